package main

import (
	"bytes"
	"strings"
	"testing"
)

// A report as ginkgo v2 writes it for e2e.test (names shortened).
const sample = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="6" disabled="0" errors="0" failures="1" time="120.5">
  <testsuite name="Kubernetes e2e suite" package="/" tests="6" disabled="0" skipped="3" errors="0" failures="1" time="120.5">
    <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="1.2"></testcase>
    <testcase name="[It] External Storage [Driver: rbd.csi-gorbd.io] [Testpattern: Dynamic PV (default fs)] provisioning should provision storage with mount options" classname="Kubernetes e2e suite" status="passed" time="30.5"></testcase>
    <testcase name="[It] External Storage [Driver: rbd.csi-gorbd.io] [Testpattern: Dynamic PV (block volmode)] volumeMode should fail to use a volume in a pod with mismatched mode" classname="Kubernetes e2e suite" status="failed" time="60">
      <failure message="Timed out after 300s.&#xA;pod never started" type="failed">[FAILED] Timed out</failure>
    </testcase>
    <testcase name="[It] External Storage [Driver: rbd.csi-gorbd.io] [Testpattern: Pre-provisioned PV (default fs)] subPath should support existing directory" classname="Kubernetes e2e suite" status="skipped" time="0.1">
      <skipped message="skipped - Driver rbd.csi-gorbd.io does not support volume type &#34;PreprovisionedPV&#34; - skipping"></skipped>
    </testcase>
    <testcase name="[It] External Storage [Driver: rbd.csi-gorbd.io] [Testpattern: Inline-volume (default fs)] subPath should support existing directory" classname="Kubernetes e2e suite" status="skipped" time="0.1">
      <skipped message="skipped - Driver rbd.csi-gorbd.io does not support volume type &#34;InlineVolume&#34; - skipping"></skipped>
    </testcase>
    <testcase name="[It] [sig-network] Services should serve a basic endpoint" classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
  </testsuite>
</testsuites>`

func TestSummary(t *testing.T) {
	s, err := read(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.passed) != 1 || len(s.failed) != 1 || len(s.skipped) != 2 || s.unselected != 1 || len(s.setupFailed) != 0 {
		t.Fatalf("summary %+v", s)
	}
	var out bytes.Buffer
	if code := report(&out, s, false); code != 1 {
		t.Errorf("exit %d with a failure, want 1", code)
	}
	o := out.String()
	for _, want := range []string{
		"FAILED (1m0s): External Storage [Driver: rbd.csi-gorbd.io] [Testpattern: Dynamic PV (block volmode)] volumeMode should fail to use a volume in a pod with mismatched mode\n    Timed out after 300s.\n",
		`skip reason (1 specs): Driver rbd.csi-gorbd.io does not support volume type "InlineVolume" - skipping`,
		"specs: 2 ran (1m31s of spec time), 2 skipped at run time, 1 not selected\n",
		"\nupstream: 1 passed, 1 failed, 2 skipped\n",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q:\n%s", want, o)
		}
	}
}

func TestNothingRanFails(t *testing.T) {
	var out bytes.Buffer
	if code := report(&out, summary{unselected: 7}, false); code != 1 {
		t.Errorf("exit %d when nothing ran, want 1", code)
	}
	if !strings.Contains(out.String(), "upstream: 0 passed, 0 failed, 0 skipped") {
		t.Errorf("output %s", out.String())
	}
}

func TestBadReport(t *testing.T) {
	if _, err := read(strings.NewReader("<testsuites><testsuite>")); err == nil {
		t.Error("a truncated report was read")
	}
}
