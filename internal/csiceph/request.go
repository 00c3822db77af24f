package csiceph

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Required checks the fields a request must carry, given as name, value
// pairs ("volume_id", req.GetVolumeId(), ...): the first empty one is
// InvalidArgument naming it.
func Required(nameValues ...string) error {
	for i := 0; i+1 < len(nameValues); i += 2 {
		if nameValues[i+1] == "" {
			return status.Errorf(codes.InvalidArgument, "%s is required", nameValues[i])
		}
	}
	return nil
}
