// Command junitsum summarises the JUnit report of a ginkgo run of the
// upstream e2e suite (e2e.test): the specs that ran, passed and failed,
// the specs skipped at run time with the suite's reason (a capability the
// test driver does not advertise, a pattern it does not support), and the
// closing line "N passed, N failed, N skipped". Specs that the focus did
// not select are counted apart and not listed. It exits 1 when a spec
// failed or nothing ran.
//
//	go run ./test/e2e/upstream/junitsum [-skips] REPORT/junit.xml
package main

import (
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

type junitReport struct {
	Suites []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Cases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name    string        `xml:"name,attr"`
	Status  string        `xml:"status,attr"`
	Time    float64       `xml:"time,attr"`
	Skipped *junitMessage `xml:"skipped"`
	Failure *junitMessage `xml:"failure"`
	Error   *junitMessage `xml:"error"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// summary is what one report says.
type summary struct {
	passed, failed, skipped []junitCase // specs (It nodes) by outcome
	unselected              int         // specs the focus or skip filtered out
	setupFailed             []junitCase // suite setup nodes that failed
}

const specPrefix = "[It] "

func summarise(r junitReport) summary {
	var s summary
	for _, su := range r.Suites {
		for _, c := range su.Cases {
			if !strings.HasPrefix(c.Name, specPrefix) {
				// [SynchronizedBeforeSuite], [ReportAfterSuite] ...
				if c.Failure != nil || c.Error != nil {
					s.setupFailed = append(s.setupFailed, c)
				}
				continue
			}
			switch {
			case c.Failure != nil || c.Error != nil:
				s.failed = append(s.failed, c)
			case c.Skipped != nil && strings.HasPrefix(c.Skipped.Message, "skipped - "):
				s.skipped = append(s.skipped, c)
			case c.Skipped != nil:
				s.unselected++
			default:
				s.passed = append(s.passed, c)
			}
		}
	}
	return s
}

func main() {
	listSkips := flag.Bool("skips", false, "list every run-time skip with its reason")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: junitsum [-skips] junit.xml")
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "junitsum:", err)
		os.Exit(2)
	}
	defer f.Close()
	s, err := read(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "junitsum:", err)
		os.Exit(2)
	}
	os.Exit(report(os.Stdout, s, *listSkips))
}

func read(r io.Reader) (summary, error) {
	var rep junitReport
	if err := xml.NewDecoder(r).Decode(&rep); err != nil {
		return summary{}, fmt.Errorf("reading the JUnit report: %w", err)
	}
	return summarise(rep), nil
}

func name(c junitCase) string { return strings.TrimPrefix(c.Name, specPrefix) }

func dur(sec float64) string {
	return time.Duration(sec * float64(time.Second)).Round(time.Second).String()
}

// report prints the summary and returns the exit code.
func report(w io.Writer, s summary, listSkips bool) int {
	for _, c := range s.setupFailed {
		fmt.Fprintf(w, "SETUP FAILED: %s\n", c.Name)
	}
	for _, c := range s.failed {
		msg := ""
		if c.Failure != nil {
			msg = c.Failure.Message
		} else {
			msg = c.Error.Message
		}
		fmt.Fprintf(w, "FAILED (%s): %s\n    %s\n", dur(c.Time), name(c), firstLine(msg))
	}
	// Skips grouped by reason: one line per reason with the count.
	reasons := map[string]int{}
	for _, c := range s.skipped {
		reasons[strings.TrimPrefix(c.Skipped.Message, "skipped - ")]++
		if listSkips {
			fmt.Fprintf(w, "SKIPPED: %s\n    %s\n", name(c), firstLine(c.Skipped.Message))
		}
	}
	keys := make([]string, 0, len(reasons))
	for k := range reasons {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if reasons[keys[i]] != reasons[keys[j]] {
			return reasons[keys[i]] > reasons[keys[j]]
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		fmt.Fprintf(w, "skip reason (%d specs): %s\n", reasons[k], firstLine(k))
	}
	var total float64
	for _, c := range append(append([]junitCase(nil), s.passed...), s.failed...) {
		total += c.Time
	}
	fmt.Fprintf(w, "specs: %d ran (%s of spec time), %d skipped at run time, %d not selected\n",
		len(s.passed)+len(s.failed), dur(total), len(s.skipped), s.unselected)
	fmt.Fprintf(w, "upstream: %d passed, %d failed, %d skipped\n", len(s.passed), len(s.failed)+len(s.setupFailed), len(s.skipped))
	if len(s.failed) > 0 || len(s.setupFailed) > 0 || len(s.passed) == 0 {
		return 1
	}
	return 0
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
