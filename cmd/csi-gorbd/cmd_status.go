package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// clusterStatus is the part of the monitors' "status" JSON we print.
type clusterStatus struct {
	FSID   string `json:"fsid"`
	Health struct {
		Status string `json:"status"`
		Checks map[string]struct {
			Severity string `json:"severity"`
			Summary  struct {
				Message string `json:"message"`
			} `json:"summary"`
		} `json:"checks"`
		Mutes []struct {
			Code string `json:"code"`
		} `json:"mutes"`
	} `json:"health"`
	QuorumNames []string `json:"quorum_names"`
	QuorumAge   int64    `json:"quorum_age"`
	MonMap      struct {
		Epoch   int `json:"epoch"`
		NumMons int `json:"num_mons"`
	} `json:"monmap"`
	OSDMap struct {
		Epoch      int   `json:"epoch"`
		NumOSDs    int   `json:"num_osds"`
		NumUp      int   `json:"num_up_osds"`
		NumIn      int   `json:"num_in_osds"`
		UpSince    int64 `json:"osd_up_since"`
		InSince    int64 `json:"osd_in_since"`
		NumRemaped int   `json:"num_remapped_pgs"`
	} `json:"osdmap"`
	PGMap struct {
		ByState []struct {
			State string `json:"state_name"`
			Count int    `json:"count"`
		} `json:"pgs_by_state"`
		NumPGs     int    `json:"num_pgs"`
		NumPools   int    `json:"num_pools"`
		NumObjects uint64 `json:"num_objects"`
		DataBytes  uint64 `json:"data_bytes"`
		BytesUsed  uint64 `json:"bytes_used"`
		BytesAvail uint64 `json:"bytes_avail"`
		BytesTotal uint64 `json:"bytes_total"`
	} `json:"pgmap"`
	MgrMap struct {
		Available   bool `json:"available"`
		NumStandbys int  `json:"num_standbys"`
	} `json:"mgrmap"`
}

type mgrStat struct {
	Available  bool   `json:"available"`
	ActiveName string `json:"active_name"`
	NumStandby int    `json:"num_standby"`
}

func newStatusCmd(g *cephFlags) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "status",
		Short: "Show cluster status (the essentials of ceph -s)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx := cmd.Context()
			out, _, err := conn.MonCommand(ctx, `{"prefix":"status","format":"json"}`, nil)
			if err != nil {
				return err
			}
			if format == "json" {
				_, err := cmd.OutOrStdout().Write(append(out, '\n'))
				return err
			}
			var st clusterStatus
			if err := json.Unmarshal(out, &st); err != nil {
				return fmt.Errorf("status: decoding the monitors' answer: %w", err)
			}
			var mgr *mgrStat
			if mo, _, err := conn.MonCommand(ctx, `{"prefix":"mgr stat","format":"json"}`, nil); err == nil {
				var m mgrStat
				if json.Unmarshal(mo, &m) == nil {
					mgr = &m
				}
			}
			printStatus(cmd.OutOrStdout(), &st, mgr, time.Now())
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "plain", "output format: plain or json")
	return c
}

func printStatus(w io.Writer, st *clusterStatus, mgr *mgrStat, now time.Time) {
	fmt.Fprintf(w, "  cluster:\n    id:     %s\n    health: %s", st.FSID, st.Health.Status)
	if len(st.Health.Mutes) > 0 {
		codes := make([]string, len(st.Health.Mutes))
		for i, m := range st.Health.Mutes {
			codes[i] = m.Code
		}
		fmt.Fprintf(w, " (muted: %s)", strings.Join(codes, " "))
	}
	fmt.Fprintln(w)
	codes := make([]string, 0, len(st.Health.Checks))
	for k := range st.Health.Checks {
		codes = append(codes, k)
	}
	sort.Strings(codes)
	if len(codes) > 0 {
		fmt.Fprintln(w, "    checks:")
		for _, k := range codes {
			fmt.Fprintf(w, "      %s: %s\n", k, st.Health.Checks[k].Summary.Message)
		}
	}

	fmt.Fprintf(w, "\n  services:\n    mon: %d daemons, quorum %s (age %s)\n", st.MonMap.NumMons,
		strings.Join(st.QuorumNames, ","), age(time.Duration(st.QuorumAge)*time.Second))
	switch {
	case mgr != nil && mgr.ActiveName != "":
		fmt.Fprintf(w, "    mgr: %s(active)", mgr.ActiveName)
		if mgr.NumStandby > 0 {
			fmt.Fprintf(w, ", standbys: %d", mgr.NumStandby)
		}
		fmt.Fprintln(w)
	case st.MgrMap.Available:
		fmt.Fprintln(w, "    mgr: active")
	default:
		fmt.Fprintln(w, "    mgr: no daemons active")
	}
	if st.OSDMap.NumOSDs > 0 {
		fmt.Fprintf(w, "    osd: %d osds: %d up", st.OSDMap.NumOSDs, st.OSDMap.NumUp)
		if st.OSDMap.UpSince > 0 {
			fmt.Fprintf(w, " (since %s)", age(now.Sub(time.Unix(st.OSDMap.UpSince, 0))))
		}
		fmt.Fprintf(w, ", %d in", st.OSDMap.NumIn)
		if st.OSDMap.InSince > 0 {
			fmt.Fprintf(w, " (since %s)", age(now.Sub(time.Unix(st.OSDMap.InSince, 0))))
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "    osd: 0 osds: 0 up, 0 in")
	}

	p := st.PGMap
	fmt.Fprintf(w, "\n  data:\n    pools:   %d pools, %d pgs\n", p.NumPools, p.NumPGs)
	fmt.Fprintf(w, "    objects: %d objects, %s\n", p.NumObjects, bytesIEC(p.DataBytes))
	fmt.Fprintf(w, "    usage:   %s used, %s / %s avail\n", bytesIEC(p.BytesUsed), bytesIEC(p.BytesAvail), bytesIEC(p.BytesTotal))
	if len(p.ByState) > 0 {
		for i, s := range p.ByState {
			label := "    pgs:     "
			if i > 0 {
				label = "             "
			}
			fmt.Fprintf(w, "%s%d %s\n", label, s.Count, s.State)
		}
	} else {
		fmt.Fprintln(w, "    pgs:")
	}
}

// age prints a duration like ceph: 45s, 7m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// bytesIEC prints sizes like Ceph's byte_u_t: exact multiples as
// integers, otherwise with the most decimals (2, 1, 0) that keep the text
// within 7 characters including the unit.
func bytesIEC(n uint64) string {
	units := []string{" B", " KiB", " MiB", " GiB", " TiB", " PiB", " EiB"}
	v, i := n, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	mult := uint64(1) << (10 * i)
	if i == 0 || n%mult == 0 {
		return fmt.Sprintf("%d%s", v, units[i])
	}
	var s string
	for prec := 2; prec >= 0; prec-- {
		s = fmt.Sprintf("%.*f%s", prec, float64(n)/float64(mult), units[i])
		if len(s) <= 7 {
			break
		}
	}
	return s
}
