package rbd

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

type encodingEncoder = encoding.Encoder

func fmtSscanHex(s string, v *uint64) (int, error) { return fmt.Sscanf(s, "%x", v) }
