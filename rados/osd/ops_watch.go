package osd

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// watchOp builds a WATCH op: u64 cookie, u64 ver (unused), u8 op, u32 gen,
// u32 timeout (0: the OSD's default).
func watchOp(cookie uint64, op uint8, gen uint32, timeout uint32) Op {
	o := Op{Code: OpWatch}
	o.put64(0, cookie)
	o.Args[16] = op
	o.put32(17, gen)
	o.put32(21, timeout)
	return o
}

// WatchOp registers a watch with the given cookie (use [Client.Watch],
// which keeps it alive).
func WatchOp(cookie uint64, timeoutSec uint32) Op {
	return watchOp(cookie, WatchOpWatch, 0, timeoutSec)
}

// WatchReconnect re-registers a watch after a reconnect.
func WatchReconnect(cookie uint64, gen uint32) Op {
	return watchOp(cookie, WatchOpReconnect, gen, 0)
}

// WatchPing checks that a watch is still registered (ENOTCONN if not).
func WatchPing(cookie uint64, gen uint32) Op {
	o := watchOp(cookie, WatchOpPing, gen, 0)
	return o
}

// Unwatch removes a watch.
func Unwatch(cookie uint64) Op { return watchOp(cookie, WatchOpUnwatch, 0, 0) }

// NotifyOp sends a notify to the object's watchers: in is u32 prot_ver 1,
// u32 timeout (seconds), bufferlist payload. Out is the u64 notify id; the
// acks arrive in an MWatchNotify NOTIFY_COMPLETE for cookie.
func NotifyOp(cookie uint64, timeoutSec uint32, payload []byte) Op {
	o := Op{Code: OpNotify}
	o.put64(0, cookie)
	e := encoding.NewEncoder(make([]byte, 0, 12+len(payload)))
	e.U32(1)
	e.U32(timeoutSec)
	e.Bytes32(payload)
	o.In = e.Bytes()
	return o
}

// NotifyAck acknowledges notify notifyID received on the watch cookie,
// with a reply for the notifier.
func NotifyAck(notifyID, cookie uint64, reply []byte) Op {
	e := encoding.NewEncoder(make([]byte, 0, 20+len(reply)))
	e.U64(notifyID)
	e.U64(cookie)
	e.Bytes32(reply)
	return Op{Code: OpNotifyAck, In: e.Bytes()}
}

// ListWatchers lists the object's watchers; parse Out with
// ParseListWatchers.
func ListWatchers() Op { return Op{Code: OpListWatchers} }

// Watcher is a watch_item_t.
type Watcher struct {
	Name       entity.NumName
	Cookie     uint64
	TimeoutSec uint32
	Addr       entity.Addr
}

// ParseListWatchers decodes obj_list_watch_response_t: a versioned list of
// watch_item_t {entity_name_t, u64 cookie, u32 timeout, (v2) entity_addr_t}.
func ParseListWatchers(out []byte) ([]Watcher, error) {
	d := encoding.NewDecoder(out)
	sd, _ := d.Struct(1)
	n := sd.Count(6 + 9 + 12)
	ws := make([]Watcher, 0, n)
	for i := 0; i < n && sd.Err() == nil; i++ {
		id, h := sd.Struct(2)
		var w Watcher
		w.Name.Type = entity.Type(id.U8())
		w.Name.Num = id.I64()
		w.Cookie = id.U64()
		w.TimeoutSec = id.U32()
		if h.Version >= 2 {
			w.Addr = entity.DecodeAddr(id)
		}
		ws = append(ws, w)
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: list-watchers output: %v", ErrProtocol, err)
	}
	return ws, nil
}

// NotifyAckEntry is one watcher's answer to a notify.
type NotifyAckEntry struct {
	NotifierGID uint64 // the watcher's global id
	Cookie      uint64
	Reply       []byte
}

// NotifyTimeout names a watcher that did not answer in time.
type NotifyTimeout struct {
	GID, Cookie uint64
}

// ParseNotifyReplies decodes the NOTIFY_COMPLETE buffer:
// map<pair<u64 gid,u64 cookie>, bufferlist> acks, then a list of
// pair<u64,u64> that timed out. Replies alias b.
func ParseNotifyReplies(b []byte) ([]NotifyAckEntry, []NotifyTimeout, error) {
	if len(b) == 0 {
		return nil, nil, nil
	}
	d := encoding.NewDecoder(b)
	n := d.Count(20)
	acks := make([]NotifyAckEntry, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		a := NotifyAckEntry{NotifierGID: d.U64(), Cookie: d.U64()}
		a.Reply = d.Bytes()
		acks = append(acks, a)
	}
	var tos []NotifyTimeout
	if d.Len() > 0 {
		m := d.Count(16)
		tos = make([]NotifyTimeout, 0, m)
		for i := 0; i < m && d.Err() == nil; i++ {
			tos = append(tos, NotifyTimeout{GID: d.U64(), Cookie: d.U64()})
		}
	}
	if err := d.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: notify replies: %v", ErrProtocol, err)
	}
	return acks, tos, nil
}
