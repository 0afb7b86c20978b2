package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"
)

func getenv(k string) string { return os.Getenv(k) }

type forward struct {
	port  int
	local string
}

type clientOpts struct {
	ws         bool
	serverURL  string
	addr       string
	headers    listFlag
	caFile     string
	tlsInsec   bool
	forwards   map[int]string
	order      []forward
	keepalive  time.Duration
	bmin, bmax time.Duration
	once       bool
	cfg        *ssh.ClientConfig
	// sshclient extras
	pings    int
	requests listFlag
	direct   string
	open     string
	timeout  time.Duration
}

func cmdClient(args []string, ws bool) int {
	name := "client"
	if !ws {
		name = "sshclient"
	}
	o := &clientOpts{ws: ws, forwards: map[int]string{}}
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	var fwds listFlag
	fs.StringVar(&o.serverURL, "server", "", "client: WebSocket server URL ws://... or wss://...")
	fs.StringVar(&o.addr, "addr", "", "sshclient: host:port of a plain-TCP SSH server")
	key := fs.String("key", "", "private key vt-priv-... (also $VTUNNEL_KEY); none -> 'none' auth")
	fs.Var(&fwds, "forward", "remotePort=localAddr (repeatable)")
	fs.Var(&o.headers, "header", "client: extra WebSocket handshake header 'Name: value' (repeatable)")
	fs.StringVar(&o.caFile, "ca", "", "client: PEM CA bundle for wss:// (default system roots)")
	fs.BoolVar(&o.tlsInsec, "tls-insecure", false, "client: skip wss:// certificate verification")
	fs.DurationVar(&o.keepalive, "keepalive", 30*time.Second, "client->server ping interval (<=0 disables)")
	fs.DurationVar(&o.bmin, "backoff-min", time.Second, "reconnect backoff minimum")
	fs.DurationVar(&o.bmax, "backoff-max", 5*time.Second, "reconnect backoff maximum")
	fs.BoolVar(&o.once, "once", false, "do not reconnect: exit (status 1) when the session ends or fails")
	hostKeyAlg := fs.String("hostkey-alg", "", "comma-separated ClientConfig.HostKeyAlgorithms")
	knownHost := fs.String("known-host", "", "accept only this host key (authorized_keys line 'ssh-ed25519 AAAA...')")
	insecure := fs.Bool("insecure", false, "accept any host key even with -key (to test server-side auth rejection)")
	version := fs.String("version", "", "SSH client version string")
	user := fs.String("user", sshUser, "SSH user name (vtunnel; e.g. root against the sshd fixture)")
	fs.IntVar(&o.pings, "ping", 0, "send N 'ping' global requests after connecting, print replies")
	fs.Var(&o.requests, "request", "send global request NAME[=payload] with want-reply, print reply (repeatable)")
	fs.StringVar(&o.direct, "direct", "", "open a direct-tcpip channel to host:port and pipe stdin/stdout through it, then exit")
	fs.StringVar(&o.open, "open", "", "open a channel of this type (no extra data), print the result, then exit")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Second, "dial + handshake timeout")
	var af algoFlags
	af.register(fs)
	fs.Parse(args)
	if o.direct != "" {
		eventOut = os.Stderr // stdout carries the channel data
	}

	if ws && o.serverURL == "" {
		log.Printf("error: -server is required")
		return 2
	}
	if !ws && o.addr == "" {
		log.Printf("error: -addr is required")
		return 2
	}
	for _, f := range fwds {
		i := strings.Index(f, "=")
		if i < 0 {
			log.Printf("error: bad -forward %q, want remotePort=localAddr", f)
			return 2
		}
		p, err := strconv.Atoi(f[:i])
		if err != nil || p < 1 || p > 65535 {
			log.Printf("error: bad remote port in -forward %q", f)
			return 2
		}
		o.forwards[p] = f[i+1:]
		o.order = append(o.order, forward{p, f[i+1:]})
	}
	if ws && len(o.order) == 0 {
		log.Printf("error: at least one -forward is required")
		return 2
	}
	if *key == "" {
		*key = getenv("VTUNNEL_KEY")
	}

	cfg := &ssh.ClientConfig{User: *user, ClientVersion: *version, Timeout: o.timeout}
	af.apply(&cfg.Config)
	cfg.HostKeyAlgorithms = splitList(*hostKeyAlg)
	var wantHost []byte
	if *key != "" {
		priv, err := parsePriv(*key)
		if err != nil {
			log.Printf("error: %v", err)
			return 2
		}
		signer, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			log.Printf("error: %v", err)
			return 2
		}
		cfg.Auth = []ssh.AuthMethod{ssh.PublicKeys(signer)}
		hk, err := derivedHostKey(priv.Public().(ed25519.PublicKey))
		if err != nil {
			log.Printf("error: %v", err)
			return 2
		}
		wantHost = hk.PublicKey().Marshal()
	} else {
		log.Printf("WARNING: running without a key: 'none' auth, any host key accepted")
	}
	if *knownHost != "" {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*knownHost))
		if err != nil {
			log.Printf("error: -known-host: %v", err)
			return 2
		}
		wantHost = pk.Marshal()
	}
	if *insecure {
		wantHost = nil
	}
	cfg.HostKeyCallback = func(host string, remote net.Addr, k ssh.PublicKey) error {
		event("HOSTKEY_SEEN %s", bytes.TrimSpace(ssh.MarshalAuthorizedKey(k)))
		if wantHost != nil && !bytes.Equal(k.Marshal(), wantHost) {
			event("HOSTKEY_MISMATCH")
			return fmt.Errorf("host key mismatch")
		}
		return nil
	}
	o.cfg = cfg

	oneShot := o.direct != "" || o.open != "" || (!ws && len(o.order) == 0)
	if oneShot {
		o.once = true
	}
	backoff := o.bmin
	for {
		connected, rc := o.session(oneShot)
		if o.once {
			return rc
		}
		if connected {
			backoff = o.bmin
		}
		event("RECONNECT_IN %s", backoff)
		time.Sleep(backoff)
		if !connected {
			backoff *= 2
			if backoff > o.bmax {
				backoff = o.bmax
			}
		}
	}
}

func (o *clientOpts) dial() (net.Conn, string, error) {
	if !o.ws {
		c, err := net.DialTimeout("tcp", o.addr, o.timeout)
		return c, o.addr, err
	}
	d := websocket.Dialer{HandshakeTimeout: o.timeout, Proxy: nil}
	tc := &tls.Config{InsecureSkipVerify: o.tlsInsec}
	if o.caFile != "" {
		pem, err := ioutil.ReadFile(o.caFile)
		if err != nil {
			return nil, "", err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tc.RootCAs = pool
	}
	d.TLSClientConfig = tc
	h := http.Header{}
	for _, l := range o.headers {
		i := strings.Index(l, ":")
		if i < 0 {
			return nil, "", fmt.Errorf("bad -header %q", l)
		}
		h.Add(strings.TrimSpace(l[:i]), strings.TrimSpace(l[i+1:]))
	}
	c, resp, err := d.Dial(o.serverURL, h)
	if err != nil {
		if resp != nil {
			return nil, "", fmt.Errorf("%v (HTTP %s)", err, resp.Status)
		}
		return nil, "", err
	}
	return newWSConn(c), c.RemoteAddr().String(), nil
}

// session runs one connection. connected reports whether the SSH handshake
// succeeded; rc is the exit status to use when not reconnecting.
func (o *clientOpts) session(oneShot bool) (connected bool, rc int) {
	nc, addr, err := o.dial()
	if err != nil {
		event("DIAL_FAILED err=%q", err.Error())
		return false, 1
	}
	var sc ssh.Conn
	var chans <-chan ssh.NewChannel
	var reqs <-chan *ssh.Request
	err = withTimeout(o.timeout, func() (e error) {
		sc, chans, reqs, e = ssh.NewClientConn(nc, addr, o.cfg)
		return
	})
	if err != nil {
		nc.Close()
		event("SSH_HANDSHAKE_FAILED err=%q", err.Error())
		return false, 1
	}
	defer sc.Close()
	event("CONNECTED server=%q", sc.ServerVersion())

	go func() {
		for req := range reqs {
			if req.Type == "ping" {
				event("SERVER_PING")
				req.Reply(true, []byte("pong"))
			} else {
				event("SERVER_REQUEST_UNKNOWN type=%s", req.Type)
				if req.WantReply {
					req.Reply(false, nil)
				}
			}
		}
	}()
	go func() {
		for nch := range chans {
			go o.handleChannel(nch)
		}
	}()

	for i := 0; i < o.pings; i++ {
		ok, data, err := sc.SendRequest("ping", true, nil)
		if err != nil {
			event("PING_ERROR err=%q", err.Error())
			return true, 1
		}
		event("PING ok=%v data=%q", ok, data)
	}
	for _, r := range o.requests {
		name, payload := r, ""
		if i := strings.Index(r, "="); i >= 0 {
			name, payload = r[:i], r[i+1:]
		}
		var pl []byte
		if payload != "" {
			pl = []byte(payload)
		}
		ok, data, err := sc.SendRequest(name, true, pl)
		if err != nil {
			event("REQUEST_ERROR name=%s err=%q", name, err.Error())
			return true, 1
		}
		event("REQUEST name=%s ok=%v data=%q", name, ok, data)
	}
	for _, f := range o.order {
		body, _ := json.Marshal(listenReq{Port: f.port, LocalAddr: f.local})
		ok, data, err := sc.SendRequest("listen", true, body)
		if err != nil {
			event("LISTEN_ERROR port=%d err=%q", f.port, err.Error())
			return true, 1
		}
		if ok {
			event("LISTEN_OK port=%d data=%q", f.port, data)
		} else {
			event("LISTEN_FAILED port=%d data=%q", f.port, data)
		}
	}
	if o.open != "" {
		ch, _, err := sc.OpenChannel(o.open, nil)
		if err != nil {
			if oe, ok := err.(*ssh.OpenChannelError); ok {
				event("OPEN_FAILED type=%s reason=%d message=%q", o.open, uint32(oe.Reason), oe.Message)
			} else {
				event("OPEN_FAILED type=%s err=%q", o.open, err.Error())
			}
			return true, 1
		}
		event("OPEN_OK type=%s", o.open)
		ch.Close()
		return true, 0
	}
	if o.direct != "" {
		return true, o.runDirect(sc)
	}
	if oneShot {
		return true, 0
	}

	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = sc.Wait(); close(done) }()
	if o.keepalive > 0 {
		go func() {
			t := time.NewTicker(o.keepalive)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				var ok bool
				var data []byte
				err := withTimeout(o.keepalive, func() (e error) { ok, data, e = sc.SendRequest("ping", true, nil); return })
				if err != nil {
					event("KEEPALIVE_FAILED err=%q", err.Error())
					sc.Close()
					return
				}
				event("KEEPALIVE_REPLY ok=%v data=%q", ok, data)
			}
		}()
	}
	<-done
	if waitErr != nil {
		event("DISCONNECTED err=%q", waitErr.Error())
	} else {
		event("DISCONNECTED")
	}
	return true, 1
}

func (o *clientOpts) runDirect(sc ssh.Conn) int {
	host, ps, err := net.SplitHostPort(o.direct)
	if err != nil {
		log.Printf("error: -direct: %v", err)
		return 2
	}
	p, _ := strconv.Atoi(ps)
	msg := struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}{host, uint32(p), "127.0.0.1", 0}
	ch, reqs, err := sc.OpenChannel("direct-tcpip", ssh.Marshal(&msg))
	if err != nil {
		if oe, ok := err.(*ssh.OpenChannelError); ok {
			event("OPEN_FAILED type=direct-tcpip reason=%d message=%q", uint32(oe.Reason), oe.Message)
		} else {
			event("OPEN_FAILED type=direct-tcpip err=%q", err.Error())
		}
		return 1
	}
	go ssh.DiscardRequests(reqs)
	fmt.Fprintln(os.Stderr, "vtpeer: direct-tcpip open")
	up, down := pipe(stdio{}, ch)
	fmt.Fprintf(os.Stderr, "vtpeer: direct-tcpip closed sent=%d received=%d\n", up, down)
	return 0
}

// stdio is stdin (read) + stdout (write) as one ReadWriteCloser.
type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
func (stdio) Close() error                { return nil }
func (stdio) CloseWrite() error           { return os.Stdout.Close() }

func (o *clientOpts) handleChannel(nch ssh.NewChannel) {
	if nch.ChannelType() != "tunnel" {
		event("CHANNEL_REJECT type=%s reason=unknown-type", nch.ChannelType())
		nch.Reject(ssh.UnknownChannelType, "unknown channel type")
		return
	}
	var td tunnelData
	if err := json.Unmarshal(nch.ExtraData(), &td); err != nil {
		event("CHANNEL_REJECT type=tunnel reason=bad-json")
		nch.Reject(ssh.ConnectionFailed, "invalid tunnel data: "+err.Error())
		return
	}
	local, ok := o.forwards[td.Port]
	if !ok {
		event("CHANNEL_REJECT type=tunnel port=%d reason=no-forward", td.Port)
		nch.Reject(ssh.ConnectionFailed, "no forward for port")
		return
	}
	var c net.Conn
	var err error
	if strings.HasPrefix(local, "tls://") {
		hp := strings.TrimPrefix(local, "tls://")
		host, _, _ := net.SplitHostPort(hp)
		d := &net.Dialer{Timeout: 10 * time.Second}
		c, err = tls.DialWithDialer(d, "tcp", hp, &tls.Config{ServerName: host})
	} else {
		c, err = net.DialTimeout("tcp", local, 10*time.Second)
	}
	if err != nil {
		event("CHANNEL_REJECT type=tunnel port=%d reason=dial err=%q", td.Port, err.Error())
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		c.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	event("TUNNEL_OPEN port=%d local=%s", td.Port, local)
	up, down := pipe(ch, c)
	event("TUNNEL_CLOSED port=%d to_local=%d from_local=%d", td.Port, up, down)
}
