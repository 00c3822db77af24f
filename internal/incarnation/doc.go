// Package incarnation lets a restarted process recognise the Ceph clients
// its previous incarnation ran, so that it can fence them and take their
// locks over at once.
//
// A process that dies with kill -9 leaves its RBD header watches on the
// OSDs until osd_client_watch_timeout (30 s by default) runs out; until
// then every other client must treat its exclusive locks as held by a live
// owner. The process that replaces it knows better: it holds the state
// directory's lock, which the kernel released when the old process died,
// so every client the old process recorded there is dead. A Dir is that
// lock plus the list of recorded clients (one opaque token per line, such
// as "<fsid> client.<global id>").
//
// The package knows nothing of Ceph: callers choose the tokens.
package incarnation
