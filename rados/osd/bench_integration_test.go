package osd_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/osd"
)

// BenchmarkIntegration4K measures 4 KiB writes and reads against the real
// pacific cluster, 16 in flight (run with -bench Integration -run XXX).
func BenchmarkIntegration4K(b *testing.B) {
	for _, kind := range []string{"write", "read"} {
		b.Run(kind, func(b *testing.B) {
			st := newStackTB(b, "pacific")
			ctx := context.Background()
			data := make([]byte, 4096)
			objs := make([]string, 64)
			for i := range objs {
				objs[i] = fmt.Sprintf("osdbench-%d", i)
				if err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: objs[i], Ops: []osd.Op{osd.WriteFull(data)}}); err != nil {
					b.Fatal(err)
				}
			}
			b.SetParallelism(8) // 2 cores x 8 = 16 goroutines
			b.SetBytes(4096)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				ops := make([]osd.Op, 1)
				for pb.Next() {
					i++
					if kind == "write" {
						ops[0] = osd.Write(0, data)
					} else {
						ops[0] = osd.Read(0, 4096)
					}
					req := osd.Request{Pool: st.pool, Object: objs[i%len(objs)], Ops: ops}
					if err := st.osd.Do(ctx, &req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			for _, o := range objs {
				st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Delete()}})
			}
		})
	}
}
