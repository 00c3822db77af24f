package rbd

import (
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// cls_lock ("lock" class) as RBD's exclusive lock uses it on the header.
// Every argument is a versioned struct v1/c1 (cls/lock/cls_lock_ops.h).

// Lock types (ClsLockType).
const (
	LockExclusive uint8 = 1
	LockShared    uint8 = 2
)

// RBD's exclusive lock: name, tag, and the cookie built from the watch
// handle ("auto <handle>").
const (
	rbdLockName = "rbd_lock"
	rbdLockTag  = "internal"
)

func rbdLockCookie(watchHandle uint64) string {
	return "auto " + encodeUintDec(watchHandle)
}

func encodeUintDec(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}

// lockArgs: cls_lock_lock_op { name, u8 type, cookie, tag, description,
// utime duration (0 = forever), u8 flags }.
func lockArgs(name string, typ uint8, cookie, tag, desc string, duration time.Duration, flags uint8) []byte {
	e, m := lockOpHead(name, typ, cookie, tag)
	e.String(desc)
	e.U32(uint32(duration / time.Second))
	e.U32(uint32(duration % time.Second))
	e.U8(flags)
	e.StructEnd(m)
	return e.B
}

// unlockArgs: cls_lock_unlock_op { name, cookie }.
func unlockArgs(name, cookie string) []byte {
	e := enc()
	m := e.StructBegin(1, 1)
	e.String(name)
	e.String(cookie)
	e.StructEnd(m)
	return e.B
}

// breakLockArgs: cls_lock_break_op { name, entity_name_t locker, cookie }.
func breakLockArgs(name string, locker entity.NumName, cookie string) []byte {
	e := enc()
	m := e.StructBegin(1, 1)
	e.String(name)
	e.U8(uint8(locker.Type))
	e.I64(locker.Num)
	e.String(cookie)
	e.StructEnd(m)
	return e.B
}

// getLockInfoArgs: cls_lock_get_info_op { name }.
func getLockInfoArgs(name string) []byte {
	e := enc()
	m := e.StructBegin(1, 1)
	e.String(name)
	e.StructEnd(m)
	return e.B
}

// assertLockedArgs: cls_lock_assert_op { name, u8 type, cookie, tag }.
func assertLockedArgs(name string, typ uint8, cookie, tag string) []byte {
	e, m := lockOpHead(name, typ, cookie, tag)
	e.StructEnd(m)
	return e.B
}

// lockOpHead starts the v1/c1 struct that cls_lock_lock_op and
// cls_lock_assert_op both open with: name, u8 type, cookie, tag. The
// caller appends the rest and ends the struct at the mark.
func lockOpHead(name string, typ uint8, cookie, tag string) (e *encoding.Encoder, mark int) {
	e = enc()
	mark = e.StructBegin(1, 1)
	e.String(name)
	e.U8(typ)
	e.String(cookie)
	e.String(tag)
	return e, mark
}

// Locker is one holder of a cls lock.
type Locker struct {
	Entity      entity.NumName
	Cookie      string
	Expiration  time.Time // zero: never
	Addr        entity.Addr
	Description string
}

// LockInfo is the cls_lock get_info reply.
type LockInfo struct {
	Lockers []Locker
	Type    uint8
	Tag     string
}

// decodeLockInfo: cls_lock_get_info_reply { map<locker_id_t{entity_name_t,
// cookie}, locker_info_t{utime expiration, entity_addr_t, description}>,
// u8 type, string tag }, each piece a v1 struct.
func decodeLockInfo(b []byte) (LockInfo, error) {
	d := encoding.NewDecoder(b)
	body, _ := d.Struct(1)
	var li LockInfo
	n := body.Count(2 * 6)
	for i := 0; i < n && body.Err() == nil; i++ {
		var l Locker
		id, _ := body.Struct(1)
		l.Entity.Type = entity.Type(id.U8())
		l.Entity.Num = id.I64()
		l.Cookie = id.String()
		info, _ := body.Struct(1)
		l.Expiration = info.Timespec()
		if l.Expiration.Unix() == 0 {
			l.Expiration = time.Time{}
		}
		l.Addr = entity.DecodeAddr(info)
		l.Description = info.String()
		li.Lockers = append(li.Lockers, l)
	}
	li.Type = body.U8()
	li.Tag = body.String()
	return li, finish("lock.get_info", d)
}
