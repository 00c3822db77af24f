package mon

import (
	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// OSDMapMsg is a decoded MOSDMap (CEPH_MSG_OSD_MAP) with the maps left
// raw: fsid, map<epoch, bufferlist> incrementals, map<epoch, bufferlist>
// full maps, and (header v2+) the sender's oldest and newest epochs
// (Quincy+ calls the first cluster_osdmap_trim_lower_bound). Later fields
// (gap_removed_snaps in v4) are ignored. Decoding the maps themselves is
// the osdmap package's job.
type OSDMapMsg struct {
	FSID         [16]byte
	Incrementals []EpochBlob // ascending epochs
	Full         []EpochBlob // ascending epochs
	Oldest       uint32
	Newest       uint32
}

// EpochBlob is one encoded map and its epoch.
type EpochBlob struct {
	Epoch uint32
	Data  []byte
}

// First and Last return the lowest and highest epoch carried (0 if none).
func (m *OSDMapMsg) First() uint32 {
	var e uint32
	for _, s := range [][]EpochBlob{m.Incrementals, m.Full} {
		if len(s) > 0 && (e == 0 || s[0].Epoch < e) {
			e = s[0].Epoch
		}
	}
	return e
}

// Last returns the highest epoch carried (0 if none).
func (m *OSDMapMsg) Last() uint32 {
	var e uint32
	for _, s := range [][]EpochBlob{m.Incrementals, m.Full} {
		if len(s) > 0 && s[len(s)-1].Epoch > e {
			e = s[len(s)-1].Epoch
		}
	}
	return e
}

// DecodeMOSDMap decodes the front; version is the header version. The
// blobs are copied, so the result does not alias front.
func DecodeMOSDMap(front []byte, version uint16) (*OSDMapMsg, error) {
	d := encoding.NewDecoder(front)
	m := &OSDMapMsg{FSID: d.UUID()}
	m.Incrementals = decodeEpochBlobs(d)
	m.Full = decodeEpochBlobs(d)
	if version >= 2 {
		m.Oldest = d.U32()
		m.Newest = d.U32()
	}
	return m, decodeErr("osd_map", d.Err())
}

func decodeEpochBlobs(d *encoding.Decoder) []EpochBlob {
	n := d.Count(8)
	out := make([]EpochBlob, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		e := d.U32()
		b := d.BytesCopy()
		if n := len(out); n > 0 && out[n-1].Epoch >= e {
			d.Fail("osd_map epochs", ErrBadMessage) // std::map keys ascend
			return nil
		}
		out = append(out, EpochBlob{Epoch: e, Data: b})
	}
	return out
}
