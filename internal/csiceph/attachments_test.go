package csiceph

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

var (
	snw  = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	snro = csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY
	mnro = csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
	mnmw = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
)

func TestAttachmentsPublish(t *testing.T) {
	var a Attachments
	if ch, err := a.Publish("a", snw, false); !ch || err != nil {
		t.Fatalf("first publish: %v %v", ch, err)
	}
	if ch, err := a.Publish("a", snw, false); ch || err != nil {
		t.Fatalf("repeat: %v %v", ch, err)
	}
	if _, err := a.Publish("a", snw, true); !errors.Is(err, ErrPublishedOther) {
		t.Fatalf("same node, read-only now: %v", err)
	}
	for _, m := range []csi.VolumeCapability_AccessMode_Mode{snw, snro, mnro, mnmw} {
		if _, err := a.Publish("b", m, false); !errors.Is(err, ErrPublished) {
			t.Errorf("%v on b while a holds it single-node: %v", m, err)
		}
	}
	if a.Unpublish("b", time.Unix(5, 0)) {
		t.Error("unpublishing a node that is not published changed the record")
	}
	if !a.Unpublish("a", time.Unix(10, 0)) || !a.IsWithdrawn("a") || len(a.Nodes) != 0 {
		t.Fatalf("after unpublish: %+v", a)
	}
	// Multi-node modes share; a single-node one joins nobody.
	if _, err := a.Publish("b", mnmw, false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Publish("c", mnmw, false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Publish("d", snw, false); !errors.Is(err, ErrPublished) {
		t.Errorf("single-node publish next to multi-node ones: %v", err)
	}
	// Published again: no longer withdrawn.
	a.Unpublish("b", time.Unix(11, 0))
	a.Unpublish("c", time.Unix(12, 0))
	if _, err := a.Publish("a", snw, false); err != nil || a.IsWithdrawn("a") {
		t.Fatalf("republish to a: %v %+v", err, a)
	}
	for i := range 40 {
		n := fmt.Sprintf("n%02d", i)
		a.Nodes[n] = Attachment{Mode: mnro.String()}
		a.Unpublish(n, time.Unix(int64(100+i), 0))
	}
	if len(a.Withdrawn) != maxWithdrawn || !a.IsWithdrawn("n39") || a.IsWithdrawn("n00") {
		t.Fatalf("withdrawn kept %d: %v", len(a.Withdrawn), a.Withdrawn)
	}
}

func TestUsersWithdrawn(t *testing.T) {
	c := func(n int64) entity.NumName { return entity.NumName{Type: entity.TypeClient, Num: n} }
	a := &Attachments{Nodes: map[string]Attachment{"b": {Mode: snw.String()}}, Withdrawn: map[string]int64{"a": 1}}
	u := Users{Attachments: a, Stages: []Stage{{Node: "a", Client: 41}, {Node: "b", Client: 42}}}
	if !u.Withdrawn(c(41)) {
		t.Error("the client staged on the withdrawn node a is not withdrawn")
	}
	if u.Withdrawn(c(42)) || u.Withdrawn(c(43)) {
		t.Error("the published node's client, or an unknown client, counted as withdrawn")
	}
	if (Users{Stages: u.Stages}).Withdrawn(c(41)) {
		t.Error("withdrawn without an attachments record")
	}
	if d := u.Describe(c(41), entity.Addr{}); d == "" || !contains(d, `node "a"`) || !contains(d, "client.41") {
		t.Errorf("Describe: %s", d)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
