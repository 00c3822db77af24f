// Package records keeps crash-safe records: one small file per record in
// a directory of its own. A record is replaced atomically (a temporary
// file in the same directory, fsync, rename over the record, fsync of the
// directory), so after a crash a record is either the old or the new one,
// never a torn mix; files are 0600 in a 0700 directory, since records may
// hold secrets. A crash can leave a temporary file behind: RemoveTemps,
// called when a process takes over the directory, deletes them.
//
// The package knows nothing of what records hold: callers encode and
// decode them (package nbd/attach keeps device records here, package
// nodeserver its staged volumes). It never logs.
package records
