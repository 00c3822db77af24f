package mon

import (
	"context"
	"fmt"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
)

// Dispatch: the messages monitors send us, routed by type to their
// handlers and waiting requests.

func (c *Client) dispatch(gen uint64, m *messenger.Message) {
	c.mu.Lock()
	current := c.sess != nil && c.sess.gen == gen || c.gen == gen
	c.mu.Unlock()
	if !current {
		return
	}
	if c.cfg.OnMessage != nil {
		c.cfg.OnMessage(m)
	}
	switch m.Type {
	case MsgMonMap:
		c.handleMonMap(gen, m)
	case MsgMonCommandAck, MsgPoolOpReply:
		c.complete(m.Tid, m)
	case MsgMonGetVersionRply:
		tid := m.Tid
		if tid == 0 && len(m.Front) >= 8 {
			tid = encoding.NewDecoder(m.Front).U64()
		}
		c.complete(tid, m)
	case MsgAuthReply:
		c.completeAuth(m)
	case MsgOSDMap:
		c.handleOSDMap(gen, m)
	case MsgMonSubscribeAck:
		if ack, err := DecodeMMonSubscribeAck(m.Front); err == nil {
			c.checkFSID(gen, ack.FSID)
		}
	default:
		// MConfig, MLog, maps we did not ask for: not ours, dropped.
	}
}

// completeAuth hands an MAuthReply to the oldest pending MAuth request.
func (c *Client) completeAuth(m *messenger.Message) {
	c.mu.Lock()
	var tid uint64
	for t, r := range c.pending {
		if r.msg.Type == MsgAuth && (tid == 0 || t < tid) {
			tid = t
		}
	}
	c.mu.Unlock()
	if tid != 0 {
		c.complete(tid, m)
	}
}

func (c *Client) checkFSID(gen uint64, fsid [16]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.haveFSID {
		c.fsid, c.haveFSID = fsid, true
		return true
	}
	if fsid == c.fsid {
		return true
	}
	err := fmt.Errorf("%w: expected fsid %s, monitor has %s", ErrWrongCluster, FormatUUID(c.fsid), FormatUUID(fsid))
	if c.fatal == nil {
		c.fatal = err
	}
	if c.sess != nil && c.sess.gen == gen {
		go c.fault(gen)
	}
	if c.monmap == nil {
		close(c.monmapCh)
		c.monmap = &MonMap{} // unblock Dial, which reports c.fatal
	}
	return false
}

func (c *Client) handleMonMap(gen uint64, m *messenger.Message) {
	mm, err := DecodeMMonMap(m.Front)
	var monmap *MonMap
	if err == nil {
		monmap, err = DecodeMonMap(mm.MonMap)
	}
	if err != nil {
		// A later map we cannot read is dropped (we keep the one we
		// have); without a first one the client cannot work: fail Dial.
		c.mu.Lock()
		if c.monmap == nil {
			c.fatal = fmt.Errorf("mon: first monmap unreadable: %w", err)
			c.monmap = &MonMap{}
			close(c.monmapCh)
		}
		c.mu.Unlock()
		return
	}
	if !c.checkFSID(gen, monmap.FSID) {
		return
	}
	c.mu.Lock()
	first := c.monmap == nil
	if first || monmap.Epoch >= c.monmap.Epoch {
		c.monmap = monmap
	}
	if first {
		close(c.monmapCh)
	}
	c.mu.Unlock()
}

func (c *Client) handleOSDMap(gen uint64, m *messenger.Message) {
	om, err := DecodeMOSDMap(m.Front, m.Version)
	if err != nil {
		return
	}
	if !c.checkFSID(gen, om.FSID) {
		return
	}
	var resub *messenger.Message
	var s *session
	c.mu.Lock()
	if last := om.Last(); last > c.osdmapHave {
		c.osdmapHave = last
	}
	if sub, ok := c.subs["osdmap"]; ok {
		sub.Start = uint64(c.osdmapHave) + 1
		c.subs["osdmap"] = sub
		// Monitors send at most osd_map_message_max maps at once: ask
		// for the rest when this batch stopped short of their newest.
		if om.Newest > c.osdmapHave && c.sess != nil {
			resub = c.subscribeMsgLocked()
			s = c.sess
		}
	}
	c.mu.Unlock()
	if c.cfg.OnOSDMap != nil {
		c.cfg.OnOSDMap(om)
	}
	if resub != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.conn.Send(ctx, resub)
		}()
	}
}
