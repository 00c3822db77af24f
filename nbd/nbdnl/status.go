package nbdnl

import "github.com/mdlayher/netlink"

// decodeStatus decodes the attributes of an NBD_CMD_STATUS reply:
//
//	NBD_ATTR_DEVICE_LIST (nest)
//	  NBD_DEVICE_ITEM (nest), repeated
//	    NBD_DEVICE_INDEX     u32
//	    NBD_DEVICE_CONNECTED u8
//
// Items without an index are skipped; unknown attributes are ignored.
func decodeStatus(b []byte) ([]Device, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	var devs []Device
	for ad.Next() {
		if ad.Type() != attrDeviceList {
			continue
		}
		ad.Nested(func(ld *netlink.AttributeDecoder) error {
			for ld.Next() {
				if ld.Type() != deviceItem {
					continue
				}
				d := Device{Index: -1}
				ld.Nested(func(dd *netlink.AttributeDecoder) error {
					for dd.Next() {
						switch dd.Type() {
						case deviceIndex:
							d.Index = int(dd.Uint32())
						case deviceConnected:
							d.Connected = dd.Uint8() != 0
						}
					}
					return dd.Err()
				})
				if d.Index >= 0 {
					devs = append(devs, d)
				}
			}
			return ld.Err()
		})
	}
	if err := ad.Err(); err != nil {
		return nil, err
	}
	return devs, nil
}
