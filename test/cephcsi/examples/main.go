// Command examples lists every parameter key of the StorageClass and
// VolumeSnapshotClass examples in a ceph-csi checkout (examples/rbd/*.yaml)
// — the keys set and the ones shown commented out as options — into a JSON
// file for the parameter table test. test/cephcsi/capture.sh runs it next to
// the capture; see test/cephcsi/README.md.
//
//	go run ./test/cephcsi/examples -src CEPH_CSI_CHECKOUT -version V -commit C -out FILE
package main

import (
	"bufio"
	"flag"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/test/cephcsi"
)

func main() {
	src := flag.String("src", "", "ceph-csi checkout")
	out := flag.String("out", "", "JSON file to write")
	version := flag.String("version", "", "ceph-csi version of the checkout")
	commit := flag.String("commit", "", "ceph-csi commit of the checkout")
	flag.Parse()
	if *src == "" || *out == "" || *version == "" || len(*commit) != 40 {
		log.Fatal("usage: examples -src DIR -version V -commit FULL_SHA -out FILE")
	}
	files, err := filepath.Glob(filepath.Join(*src, "examples", "rbd", "*.yaml"))
	if err != nil {
		log.Fatal(err)
	}
	sort.Strings(files)
	res := cephcsi.ExampleParameters{Version: *version, Commit: *commit, GeneratedBy: "test/cephcsi/examples"}
	for _, f := range files {
		classes, err := scan(f)
		if err != nil {
			log.Fatal(err)
		}
		rel, _ := filepath.Rel(*src, f)
		for _, c := range classes {
			c.File = rel
			res.Classes = append(res.Classes, c)
		}
	}
	if len(res.Classes) == 0 {
		log.Fatal("no StorageClass or VolumeSnapshotClass in examples/rbd")
	}
	if err := cephcsi.WriteJSON(*out, res); err != nil {
		log.Fatal(err)
	}
}

var (
	kindLine = regexp.MustCompile(`^kind:\s*(\S+)`)
	nameLine = regexp.MustCompile(`^\s+name:\s*(\S+)`)
	// A parameter, set ("  key: value") or shown as an option ("  # key: value").
	paramLine = regexp.MustCompile(`^(\s+)(# ?)?([A-Za-z][A-Za-z0-9./_-]*):(?:\s+(.*?))?\s*$`)
)

// prose are words that open comment sentences in the examples ("# eg:
// pool: rbdpool"), not parameters.
var prose = map[string]bool{"eg": true}

// scan walks the YAML documents of one file, line by line: commented-out
// options cannot be seen by a YAML parser.
func scan(path string) ([]cephcsi.ExampleClass, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out      []cephcsi.ExampleClass
		cur      *cephcsi.ExampleClass
		inParams bool
		indent   string
		n        int
	)
	flush := func() {
		if cur != nil && (cur.Kind == "StorageClass" || cur.Kind == "VolumeSnapshotClass" ||
			cur.Kind == "VolumeGroupSnapshotClass") {
			out = append(out, *cur)
		}
		cur, inParams, indent = nil, false, ""
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "---" {
			flush()
			continue
		}
		if m := kindLine.FindStringSubmatch(line); m != nil {
			if cur == nil {
				cur = &cephcsi.ExampleClass{}
			}
			cur.Kind = m[1]
			continue
		}
		if cur == nil {
			cur = &cephcsi.ExampleClass{}
		}
		if strings.HasPrefix(line, "parameters:") {
			inParams = true
			continue
		}
		if inParams && line != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "#") {
			inParams = false
		}
		if !inParams {
			if m := nameLine.FindStringSubmatch(line); m != nil && cur.Name == "" {
				cur.Name = m[1]
			}
			continue
		}
		m := paramLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		commented := m[2] != ""
		if indent == "" && !commented {
			indent = m[1]
		}
		if indent != "" && m[1] != indent || prose[m[3]] || commented && !startsLower(m[3]) {
			continue
		}
		cur.Add(m[3], strings.Trim(m[4], `"'`), commented, n)
	}
	flush()
	return out, sc.Err()
}

func startsLower(s string) bool { return s[0] >= 'a' && s[0] <= 'z' }
