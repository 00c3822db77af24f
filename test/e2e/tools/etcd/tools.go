//go:build tools

// Package tools pins etcd 3.7 for test/e2e/build-bins.sh (the etcd server
// module has replace directives, so `go install` refuses it).
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
