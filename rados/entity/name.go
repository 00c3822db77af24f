package entity

import (
	"fmt"
	"strconv"
	"strings"
)

// Type is a Ceph entity type (CEPH_ENTITY_TYPE_*).
type Type uint8

// Entity types.
const (
	TypeMon    Type = 0x01
	TypeMDS    Type = 0x02
	TypeOSD    Type = 0x04
	TypeClient Type = 0x08
	TypeMgr    Type = 0x10
	TypeAuth   Type = 0x20
	TypeAny    Type = 0xff
)

func (t Type) String() string {
	switch t {
	case TypeMon:
		return "mon"
	case TypeMDS:
		return "mds"
	case TypeOSD:
		return "osd"
	case TypeClient:
		return "client"
	case TypeMgr:
		return "mgr"
	case TypeAuth:
		return "auth"
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// Name is an entity name such as client.admin: a type and an id string.
type Name struct {
	Type Type
	ID   string
}

func (n Name) String() string { return n.Type.String() + "." + n.ID }

// ParseName parses "client.admin", "osd.3" or a bare id (taken as a client).
func ParseName(s string) (Name, error) {
	typ, id, ok := strings.Cut(s, ".")
	if !ok {
		if s == "" {
			return Name{}, fmt.Errorf("entity: empty name")
		}
		return Name{Type: TypeClient, ID: s}, nil
	}
	var t Type
	switch typ {
	case "client":
		t = TypeClient
	case "mon":
		t = TypeMon
	case "osd":
		t = TypeOSD
	case "mgr":
		t = TypeMgr
	case "mds":
		t = TypeMDS
	default:
		return Name{}, fmt.Errorf("entity: unknown type in name %q", s)
	}
	if id == "" {
		return Name{}, fmt.Errorf("entity: empty id in name %q", s)
	}
	return Name{Type: t, ID: id}, nil
}

// NumName is an entity_name_t: a type and a number (client.4123, osd.0).
type NumName struct {
	Type Type
	Num  int64
}

func (n NumName) String() string { return n.Type.String() + "." + strconv.FormatInt(n.Num, 10) }
