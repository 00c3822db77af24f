package driver

import (
	"context"
	"time"

	"github.com/kubernetes-csi/csi-lib-utils/protosanitizer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
)

// logCalls logs each call with its request and reply, secrets stripped by
// protosanitizer. Errors are logged at level 0, successes at level 4
// (level 5 adds the reply), the request itself at level 5.
func logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	klog.V(5).InfoS("GRPC call", "method", info.FullMethod, "request", protosanitizer.StripSecrets(req))
	resp, err := handler(ctx, req)
	if err != nil {
		st, _ := status.FromError(err)
		klog.ErrorS(err, "GRPC error", "method", info.FullMethod, "code", st.Code(),
			"request", protosanitizer.StripSecrets(req), "duration", time.Since(start))
		return resp, err
	}
	if klog.V(5).Enabled() {
		klog.V(5).InfoS("GRPC reply", "method", info.FullMethod, "response", protosanitizer.StripSecrets(resp),
			"duration", time.Since(start))
	} else {
		klog.V(4).InfoS("GRPC ok", "method", info.FullMethod, "duration", time.Since(start))
	}
	return resp, err
}
