// Command gorbd-node-agent runs inside the Kubernetes node VM of test/e2e
// (test/vm/node). It does two things for the host:
//
//   - forwards the Ceph test cluster's mon and OSD ports from the guest's
//     127.0.0.1 to the host (10.0.2.2), because the cluster advertises
//     127.0.0.1 addresses (see test/vm/guest/hostfwd);
//   - serves POST /exec on -listen: the request body is a shell script run
//     by /bin/sh in the guest, the reply is its combined output followed by
//     a last line "exit: N". The host reaches it through a qemu hostfwd on
//     its loopback. The suite uses it to read the kubelet's and containerd's
//     logs and to kill -9 the node plugin's process as an operator would.
//
// It is a test VM's back door and nothing else: the VM is throw-away, has no
// users, and the port is reachable only from the host's loopback.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/test/vm/guest/hostfwd"
)

// maxScript bounds the size of an /exec request body.
const maxScript = 1 << 20

func main() {
	ports := flag.String("forward", "", `ports to forward to the host, e.g. "7500,7502-7549" (empty: none)`)
	target := flag.String("target", hostfwd.DefaultHost, "host address as the guest sees it")
	listen := flag.String("listen", ":7000", "address of the /exec endpoint")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *ports != "" {
		list, err := hostfwd.ParsePorts(*ports)
		if err != nil {
			log.Fatal(err)
		}
		fwd, err := hostfwd.Start(ctx, hostfwd.Config{TargetHost: *target, Ports: list})
		if err != nil {
			log.Fatal(err)
		}
		defer fwd.Close()
		log.Printf("forwarding %d ports to %s", len(list), *target)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("POST /exec", execHandler)
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("serving /exec on %s", *listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// execHandler runs the body with /bin/sh -c; ?timeout=SECONDS (default 60)
// bounds it. The reply is 200 with the output and "exit: N" (N = -1 when
// the script could not run or timed out).
func execHandler(w http.ResponseWriter, r *http.Request) {
	script, err := io.ReadAll(io.LimitReader(r.Body, maxScript+1))
	if err != nil || len(script) > maxScript {
		http.Error(w, "bad or oversized script", http.StatusBadRequest)
		return
	}
	timeout := 60 * time.Second
	if s := r.URL.Query().Get("timeout"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > 3600 {
			http.Error(w, "bad timeout", http.StatusBadRequest)
			return
		}
		timeout = time.Duration(n) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", string(script))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Children the script leaves running (a background daemon) must not
	// hold the reply open: WaitDelay stops waiting for their pipes.
	cmd.WaitDelay = 2 * time.Second
	code := -1
	if err := cmd.Run(); err == nil {
		code = 0
	} else if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.Exited() {
		code = ee.ExitCode()
	} else {
		fmt.Fprintf(&out, "\nagent: %v", err)
	}
	fmt.Fprintf(&out, "\nexit: %d\n", code)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(out.Bytes())
	_ = os.Stdout.Sync()
}
