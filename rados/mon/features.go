package mon

// RADOS feature bits (CEPH_FEATURE_*, include/ceph_features.h). A feature
// introduced after the first incarnation is only "present" when its bit and
// its incarnation bits are set (HAVE_FEATURE), so the masks below include
// the incarnation bits.
const (
	incarnation2 uint64 = 1 << 57       // SERVER_JEWEL
	incarnation3 uint64 = 1<<57 | 1<<28 // SERVER_MIMIC

	FeatureNoSrcAddr        uint64 = 1 << 1
	FeatureServerNautilus   uint64 = 1<<2 | incarnation3
	FeatureSubscribe2       uint64 = 1 << 4
	FeatureMonNames         uint64 = 1 << 5
	FeatureReconnectSeq     uint64 = 1 << 6
	FeaturePGID64           uint64 = 1 << 9
	FeaturePGPool3          uint64 = 1 << 11
	FeatureOSDEnc           uint64 = 1 << 13
	FeatureMonEnc           uint64 = 1 << 15
	FeatureCrushTunables    uint64 = 1 << 18
	FeatureServerLuminous   uint64 = 1<<21 | incarnation2 // also RESEND_ON_SPLIT, RADOS_BACKOFF, OSDMAP_PG_UPMAP, CRUSH_CHOOSE_ARGS
	FeatureMsgAuth          uint64 = 1 << 23
	FeatureCrushTunables2   uint64 = 1 << 25
	FeatureServerMimic      uint64 = 1<<28 | incarnation2
	FeatureOSDHashPSPool    uint64 = 1 << 30
	FeatureOSDCachePool     uint64 = 1 << 35
	FeatureCrushV2          uint64 = 1 << 36
	FeatureOSDMapEnc        uint64 = 1 << 39
	FeatureCrushTunables3   uint64 = 1 << 41 // also OSD_PRIMARY_AFFINITY
	FeatureMsgrKeepalive2   uint64 = 1 << 42
	FeatureOSDPoolResend    uint64 = 1 << 43
	FeatureCrushV4          uint64 = 1 << 48
	FeatureNewOSDOpEncoding uint64 = 1 << 56
	FeatureServerJewel      uint64 = 1 << 57 // also MON_STATEFUL_SUB
	FeatureCrushTunables5   uint64 = 1 << 58 // also NEW_OSDOPREPLY_ENCODING
	FeatureMsgAddr2         uint64 = 1 << 59
	FeatureCephxV2          uint64 = 1 << 61
	FeatureCrushMSR         uint64 = 1<<38 | incarnation2 // Squid+: not advertised (see ClientFeatures)
	FeatureServerReef       uint64 = 1<<31 | incarnation3 // not advertised
)

// ClientFeatures is the feature set csi-gorbd advertises to monitors and
// OSDs in CLIENT_IDENT. It is the Linux kernel client's
// CEPH_FEATURES_SUPPORTED_DEFAULT without the CephFS-only bits (FLOCK,
// DIRLAYOUTHASH, REPLY_CREATE_INODE, MDSENC, EXPORT_PEER, MDS_INLINE_DATA,
// MDS_QUOTA): the kernel client is the proof that this set is enough to be
// served by Pacific through Tentacle, and every bit here has a consumer in
// this code base that must honour it:
//
//	NOSRCADDR, SUBSCRIBE2, MONNAMES, MONENC, SERVER_NAUTILUS, MSG_ADDR2
//	    mon: MonMap v9 with mon_info_t addrvecs; entity_addrvec_t everywhere.
//	RECONNECT_SEQ, MSGR_KEEPALIVE2
//	    messenger: msgr2 (always lossy client sessions, KEEPALIVE2).
//	MSG_AUTH, CEPHX_V2
//	    cephx: authorizer challenge (msgr2 always does it); the mon requires
//	    CEPHX_V2 from clients once require_min_compat_client >= nautilus.
//	PGID64, PGPOOL3, OSDENC, OSDMAP_ENC, SERVER_LUMINOUS, SERVER_MIMIC,
//	SERVER_JEWEL
//	    osdmap: the modern OSDMap/pg_pool_t encodings (the mon re-encodes
//	    maps in older formats for clients lacking them; we never want that).
//	CRUSH_TUNABLES, CRUSH_TUNABLES2, CRUSH_TUNABLES3, CRUSH_TUNABLES5,
//	CRUSH_V2, CRUSH_V4 (straw2), CRUSH_CHOOSE_ARGS (same bit as LUMINOUS),
//	OSDHASHPSPOOL, OSD_CACHEPOOL, OSD_PRIMARY_AFFINITY,
//	OSDMAP_PG_UPMAP (same bit as LUMINOUS; covers pg_upmap, pg_upmap_items
//	and Reef's pg_upmap_primaries)
//	    crush/osdmap: placement must implement all of these. The mon makes
//	    them *required* of clients (OSDMap::get_features(CLIENT), applied
//	    by OSDMonitor::update_msgr_features to the client messenger policy)
//	    as soon as the cluster uses them, and refuses CLIENT_IDENT with
//	    IDENT_MISSING_FEATURES otherwise — so they are needed to even open
//	    a mon session on a default Pacific/Reef/Tentacle cluster (straw2
//	    buckets, jewel tunables, HASHPSPOOL pools).
//	OSD_POOLRESEND, RESEND_ON_SPLIT, RADOS_BACKOFF, NEW_OSDOP_ENCODING,
//	NEW_OSDOPREPLY_ENCODING (same bit as TUNABLES5)
//	    osd client: resend on pool changes and PG splits, MOSDBackoff,
//	    MOSDOp v8 / MOSDOpReply v8 encodings.
//
// Measured (TestIntegrationRequiredFeatures, and a probe that withheld
// each advertised bit in turn): default Pacific 16.2.15, Reef 18.2.7 and
// Tentacle 20.2.4 clusters refuse a client session (IDENT_MISSING_FEATURES)
// without CRUSH_TUNABLES, CRUSH_TUNABLES2, OSDHASHPSPOOL, CRUSH_TUNABLES3,
// CRUSH_V4, CRUSH_TUNABLES5 and MSG_ADDR2 (mask 0x0c01020042040000).
// Without SERVER_NAUTILUS, MONNAMES, MONENC, SERVER_MIMIC or SERVER_JEWEL
// the session opens but the monitor sends a pre-Nautilus MonMap, which
// DecodeMonMap rejects. OSDMAP_PG_UPMAP/CRUSH_CHOOSE_ARGS (bit 21),
// OSD_CACHEPOOL, OSD_PRIMARY_AFFINITY and CEPHX_V2 become required once a
// cluster uses upmaps or weight-sets, cache tiers, primary affinity, or
// require_min_compat_client >= nautilus.
//
// Not advertised: CRUSH_MSR (Squid+ MSR rules; a cluster that uses them
// will refuse us until crush implements MSR), SERVER_REEF and later
// release bits (nothing we decode needs them), compression.
const ClientFeatures = FeatureNoSrcAddr | FeatureServerNautilus | FeatureSubscribe2 |
	FeatureMonNames | FeatureReconnectSeq | FeaturePGID64 | FeaturePGPool3 |
	FeatureOSDEnc | FeatureMonEnc | FeatureCrushTunables | FeatureServerLuminous |
	FeatureMsgAuth | FeatureCrushTunables2 | FeatureServerMimic | FeatureOSDHashPSPool |
	FeatureOSDCachePool | FeatureCrushV2 | FeatureOSDMapEnc | FeatureCrushTunables3 |
	FeatureMsgrKeepalive2 | FeatureOSDPoolResend | FeatureCrushV4 |
	FeatureNewOSDOpEncoding | FeatureServerJewel | FeatureCrushTunables5 |
	FeatureMsgAddr2 | FeatureCephxV2

// HasFeature reports whether features contains all bits of mask (the
// feature bit and its incarnation bits), like Ceph's HAVE_FEATURE.
func HasFeature(features, mask uint64) bool { return features&mask == mask }
