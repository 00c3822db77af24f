package rados

// Test hooks (compiled into tests only).

// IgnoreMonitorMaps makes c drop the MOSDMap batches the monitors send, so
// that a test can see maps arrive from OSDs alone.
func IgnoreMonitorMaps(c *Conn, ignore bool) { c.maps.ignoreMons.Store(ignore) }

// EpochsFromOSDs counts the epochs c installed from batches OSDs sent.
func EpochsFromOSDs(c *Conn) uint64 { return c.maps.fromOSD.Load() }

// MapDecodeErrors counts the map batches c could not use.
func MapDecodeErrors(c *Conn) uint64 { return c.maps.decodeErrs.Load() }

// CaptureOSDMaps hands every raw MOSDMap front an OSD sends to f.
func CaptureOSDMaps(c *Conn, f func(front []byte, version uint16)) { c.maps.capture.Store(&f) }
