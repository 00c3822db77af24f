package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/spf13/cobra"
)

// benchCmd times CreateVolume+DeleteVolume pairs through a running
// plugin's gRPC endpoint (bench/csi.sh runs it next to `rbd create` +
// `rbd rm`).
func (c *csiClientCLI) benchCmd() *cobra.Command {
	var count int
	var size int64
	var prefix string
	cmd := c.rpcCmd("bench", "Time COUNT CreateVolume+DeleteVolume pairs (one after another); print p50/p99", cobra.NoArgs,
		needSecrets|needParams, func(s *csiSession, _ []string) error {
			var creates, deletes, pairs []time.Duration
			for i := 0; i < count; i++ {
				t0 := time.Now()
				r, err := call(s, func(ctx context.Context) (*csi.CreateVolumeResponse, error) {
					return s.ctl.CreateVolume(ctx, s.createVolumeRequest(fmt.Sprintf("%s%d", prefix, i), size))
				})
				if err != nil {
					return fmt.Errorf("pair %d: CreateVolume: %w", i, err)
				}
				t1 := time.Now()
				_, err = call(s, func(ctx context.Context) (*csi.DeleteVolumeResponse, error) {
					return s.ctl.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: r.GetVolume().GetVolumeId(), Secrets: s.secrets})
				})
				if err != nil {
					return fmt.Errorf("pair %d: DeleteVolume: %w", i, err)
				}
				t2 := time.Now()
				creates, deletes, pairs = append(creates, t1.Sub(t0)), append(deletes, t2.Sub(t1)), append(pairs, t2.Sub(t0))
			}
			w := s.cmd.OutOrStdout()
			fmt.Fprintf(w, "%-22s %5s %9s %9s %9s\n", "csi-gorbd (gRPC)", "n", "p50 ms", "p99 ms", "max ms")
			for _, row := range []struct {
				name string
				d    []time.Duration
			}{{"CreateVolume", creates}, {"DeleteVolume", deletes}, {"Create+Delete pair", pairs}} {
				p50, p99, mx := percentiles(row.d)
				fmt.Fprintf(w, "%-22s %5d %9.1f %9.1f %9.1f\n", row.name, len(row.d), ms(p50), ms(p99), ms(mx))
			}
			return nil
		})
	cmd.Flags().IntVar(&count, "count", 100, "number of CreateVolume+DeleteVolume pairs")
	cmd.Flags().Int64Var(&size, "size", 1024, "volume size in MiB")
	cmd.Flags().StringVar(&prefix, "name-prefix", "csi-bench-", "CSI request names are this plus a number")
	return cmd
}

// percentiles returns p50, p99 (nearest rank) and the maximum.
func percentiles(d []time.Duration) (p50, p99, mx time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return rank(0.50), rank(0.99), s[len(s)-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
