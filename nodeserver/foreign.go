package nodeserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/nbd/attach"
)

// Volumes ceph-csi's node plugin staged before csi-gorbd took over.
//
// ceph-csi stages a volume at <staging path>/<volume id> (a filesystem
// mounted there, or for a block volume the device bind-mounted on a file
// of that name), leaves <staging path>/image-meta.json saying which image
// it mapped and how, and maps the image with krbd (/dev/rbdN, made by
// `rbd map`) or rbd-nbd (/dev/nbdN, served by an rbd-nbd process in its
// node plugin's pod). After the switch the kubelet keeps calling the node
// plugin for such a volume: NodePublishVolume for new pods (it does not
// stage again what it believes staged), NodeUnpublishVolume, and in the
// end NodeUnstageVolume. The node plugin adopts the volume the first time
// it meets it: it records it as foreign (what mapped it, the device, the
// mount) and then publishes from that mount, and unstages it the way it
// was attached: unmount, then detach the kernel device as its mapper
// would — krbd through /sys/bus/rbd/remove_single_major (the `rbd unmap`
// path), rbd-nbd through the nbd netlink disconnect — and remove the
// stash. The volume's next stage, on any node, is csi-gorbd's own.

// cephCSIStashFile is ceph-csi's staging metadata (its rbd_util.go
// stashFileName).
const cephCSIStashFile = "image-meta.json"

// Mappers of a foreign volume.
const (
	mapperKRBD   = "krbd"
	mapperRBDNBD = "rbd-nbd"
)

// cephCSIStash is ceph-csi's rbdImageMetadataStash (version 3).
type cephCSIStash struct {
	Version        int    `json:"Version"`
	Pool           string `json:"pool"`
	RadosNamespace string `json:"radosNamespace"`
	ImageName      string `json:"image"`
	UnmapOptions   string `json:"unmapOptions"`
	NbdAccess      bool   `json:"accessType"` // mapped with rbd-nbd
	Encrypted      bool   `json:"encrypted"`
	DevicePath     string `json:"device"` // rbd-nbd's device
}

// readStash reads <staging>/image-meta.json (fs.ErrNotExist: none).
func readStash(staging string) (*cephCSIStash, error) {
	b, err := os.ReadFile(filepath.Join(staging, cephCSIStashFile))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("%s: too large", cephCSIStashFile)
	}
	var st cephCSIStash
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("ceph-csi's %s: %w", cephCSIStashFile, err)
	}
	if st.Pool == "" || st.ImageName == "" {
		return nil, fmt.Errorf("ceph-csi's %s names no pool or image", cephCSIStashFile)
	}
	return &st, nil
}

// sysRBD is where krbd's sysfs interface is (tests point it elsewhere).
func (s *Server) sysRBD() string {
	if s.o.SysRBD != "" {
		return s.o.SysRBD
	}
	return "/sys/bus/rbd"
}

// krbdDevice finds the krbd device id mapping pool/namespace/image
// (/sys/bus/rbd/devices/<id>/{pool,pool_ns,name,current_snap}); -1: none.
func (s *Server) krbdDevice(pool, ns, image string) (int, error) {
	dir := filepath.Join(s.sysRBD(), "devices")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	attr := func(id, name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, id, name))
		return strings.TrimSpace(string(b))
	}
	for _, e := range ents {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		snap := attr(e.Name(), "current_snap")
		if attr(e.Name(), "pool") == pool && attr(e.Name(), "pool_ns") == ns && attr(e.Name(), "name") == image &&
			(snap == "" || snap == "-") {
			return id, nil
		}
	}
	return -1, nil
}

// krbdUnmap detaches krbd device id as `rbd unmap` does: its id written to
// remove_single_major (remove on kernels without single-major), with
// "force" when ceph-csi's unmapOptions asked for it.
func (s *Server) krbdUnmap(id int, force bool) error {
	arg := strconv.Itoa(id)
	if force {
		arg += " force"
	}
	ctl := filepath.Join(s.sysRBD(), "remove_single_major")
	if _, err := os.Stat(ctl); err != nil {
		ctl = filepath.Join(s.sysRBD(), "remove")
	}
	f, err := os.OpenFile(ctl, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(arg)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("krbd unmap of /dev/rbd%d (%s): %w", id, ctl, err)
	}
	return nil
}

// unmapForce reports whether ceph-csi's unmapOptions ("krbd:force;nbd:x"
// or plain "force") ask krbd to force the unmap.
func unmapForce(opts string) bool {
	for _, part := range strings.Split(opts, ";") {
		mapper, o, ok := strings.Cut(part, ":")
		if !ok {
			o, mapper = part, mapperKRBD
		}
		if strings.TrimSpace(mapper) != mapperKRBD && strings.TrimSpace(mapper) != "rbd" {
			continue
		}
		for _, x := range strings.Split(o, ",") {
			if strings.TrimSpace(x) == "force" {
				return true
			}
		}
	}
	return false
}

// adopt records a volume ceph-csi's node plugin staged at staging, if it
// did (nil, nil: it did not).
func (s *Server) adopt(volID, staging string) (*volumeRecord, error) {
	st, err := readStash(staging)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "volume %q: %v", volID, err)
	}
	if st.Encrypted {
		return nil, status.Errorf(codes.FailedPrecondition,
			"volume %q was staged by ceph-csi with encryption (dm-crypt over its device); this node plugin cannot take it over yet", volID)
	}
	mnt := filepath.Join(staging, volID)
	rec := &volumeRecord{VolumeID: volID, Image: st.ImageName, Namespace: st.RadosNamespace,
		StagingPath: staging, Foreign: mapperKRBD, ForeignMount: mnt, ForeignPool: st.Pool, UnmapOptions: st.UnmapOptions}
	if st.NbdAccess {
		rec.Foreign = mapperRBDNBD
		rec.Device = st.DevicePath
	} else {
		id, err := s.krbdDevice(st.Pool, st.RadosNamespace, st.ImageName)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "volume %q: looking for its krbd device: %v", volID, err)
		}
		if id >= 0 {
			rec.Device = "/dev/rbd" + strconv.Itoa(id)
		}
	}
	if fi, err := os.Stat(mnt); err == nil && !fi.IsDir() {
		rec.Block = true
	}
	if err := s.vols.save(rec); err != nil {
		return nil, status.Errorf(codes.Internal, "saving the state of volume %q: %v", volID, err)
	}
	return rec, nil
}

// loadOrAdopt returns the record of a volume: ours, or one ceph-csi
// staged at staging (adopted now); ErrNotStaged when neither.
func (s *Server) loadOrAdopt(volID, staging string) (*volumeRecord, error) {
	rec, err := s.vols.load(volID)
	if err == nil || staging == "" || !isNotStaged(err) {
		return rec, err
	}
	a, aerr := s.adopt(volID, staging)
	if aerr != nil {
		return nil, aerr
	}
	if a == nil {
		return nil, err
	}
	return a, nil
}

// unstageForeign unmounts a foreign volume and detaches its kernel
// device the way its mapper attached it.
func (s *Server) unstageForeign(ctx context.Context, rec *volumeRecord) error {
	if err := s.unmountAll(rec.ForeignMount); err != nil {
		return status.Errorf(codes.Internal, "unmounting %s: %v", rec.ForeignMount, err)
	}
	if err := os.Remove(rec.ForeignMount); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return status.Errorf(codes.Internal, "removing %s: %v", rec.ForeignMount, err)
	}
	switch rec.Foreign {
	case mapperKRBD:
		// Found again, not trusted from the record: the id may be gone.
		id, err := s.krbdDevice(rec.ForeignPool, rec.Namespace, rec.Image)
		if err != nil {
			return status.Errorf(codes.Internal, "volume %q: looking for its krbd device: %v", rec.VolumeID, err)
		}
		if id >= 0 {
			if err := s.krbdUnmap(id, unmapForce(rec.UnmapOptions)); err != nil {
				return status.Errorf(codes.Internal, "volume %q: %v", rec.VolumeID, err)
			}
		}
	case mapperRBDNBD:
		idx, ok := nbdIndex(rec.Device)
		if ok {
			if err := s.kernel().Disconnect(ctx, idx); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return status.Errorf(codes.Internal, "volume %q: disconnecting %s: %v", rec.VolumeID, rec.Device, err)
			}
		}
	}
	if err := os.Remove(filepath.Join(rec.StagingPath, cephCSIStashFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return status.Errorf(codes.Internal, "removing ceph-csi's %s: %v", cephCSIStashFile, err)
	}
	return nil
}

// kernel is the nbd kernel interface (Options.Kernel or the real one).
func (s *Server) kernel() attach.Kernel {
	if s.o.Kernel != nil {
		return s.o.Kernel
	}
	return attach.NetlinkKernel()
}

// isNotStaged reports a missing record.
func isNotStaged(err error) bool { return errors.Is(err, csiceph.ErrNotStaged) }

// nbdIndex reads N of /dev/nbdN.
func nbdIndex(dev string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(dev, "/dev/nbd"))
	return n, err == nil && strings.HasPrefix(dev, "/dev/nbd") && n >= 0
}
