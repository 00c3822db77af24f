package nbdnl

// Constants from include/uapi/linux/nbd-netlink.h and include/uapi/linux/nbd.h.

const (
	familyName    = "nbd"
	familyVersion = 1
	mcastGroup    = "nbd_mc_group"
)

// Generic netlink commands (enum nbd_cmd_attrs... the NBD_CMD_* list).
const (
	cmdConnect     = 1
	cmdDisconnect  = 2
	cmdReconfigure = 3
	cmdLinkDead    = 4
	cmdStatus      = 5
)

// Top level attributes (NBD_ATTR_*).
const (
	attrIndex             = 1  // u32
	attrSizeBytes         = 2  // u64
	attrBlockSizeBytes    = 3  // u64
	attrTimeout           = 4  // u64, seconds
	attrServerFlags       = 5  // u64, NBD_FLAG_* (transmission flags)
	attrClientFlags       = 6  // u64, NBD_CFLAG_*
	attrSockets           = 7  // nest of sockItem
	attrDeadConnTimeout   = 8  // u64, seconds
	attrDeviceList        = 9  // nest of deviceItem
	attrBackendIdentifier = 10 // string
)

// NBD_ATTR_SOCKETS contents.
const (
	sockItem = 1 // nest
	sockFD   = 1 // u32
)

// NBD_ATTR_DEVICE_LIST contents.
const (
	deviceItem      = 1 // nest
	deviceIndex     = 1 // u32
	deviceConnected = 2 // u8
)

// ClientFlags are the NBD_CFLAG_* bits of NBD_ATTR_CLIENT_FLAGS.
type ClientFlags uint64

const (
	// DestroyOnDisconnect removes the device node when it is disconnected.
	DestroyOnDisconnect ClientFlags = 1 << 0
	// DisconnectOnClose disconnects the device when the last opener closes
	// it. Never set for CSI volumes: a restart of the serving process must
	// not tear the device down.
	DisconnectOnClose ClientFlags = 1 << 1
)
