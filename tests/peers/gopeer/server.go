package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"
)

type listenReq struct {
	Port      int    `json:"port"`
	LocalAddr string `json:"local_addr,omitempty"`
}

type tunnelData struct {
	Port int `json:"port"`
}

type server struct {
	cfg       *ssh.ServerConfig
	keepalive time.Duration
	wait      time.Duration
	probe     bool

	mu        sync.Mutex
	active    *ssh.ServerConn
	activeCh  chan struct{} // closed (and replaced) whenever a session becomes active
	listeners map[int]net.Listener
	sessions  int
}

func cmdServer(args []string, ws bool) int {
	name := "server"
	if !ws {
		name = "sshserver"
	}
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	port := fs.Int("port", 3001, "listen port on -bind (0 = pick a free port; printed as 'LISTENING <port>')")
	bind := fs.String("bind", "127.0.0.1", "bind address (loopback only in tests)")
	clientKey := fs.String("client-key", "", "authorized client public key vt-pub-... (also $VTUNNEL_CLIENT_KEY)")
	keepalive := fs.Duration("keepalive", 30*time.Second, "server->client ping interval (<=0 disables)")
	wait := fs.Duration("wait", 35*time.Second, "how long an accepted tunnel connection waits for a client session")
	hostKeyType := fs.String("hostkey-type", "ecdsa", "keyless mode host key type: ecdsa|ecdsa384|ecdsa521|ed25519|rsa")
	tlsCert := fs.String("tls-cert", "", "server only: serve wss:// with this certificate (PEM)")
	tlsKey := fs.String("tls-key", "", "server only: private key for -tls-cert")
	version := fs.String("version", "", "SSH server version string (default x/crypto's)")
	probe := fs.Bool("probe-channels", false, "on each new session open an unknown channel type, a tunnel with bad JSON and a tunnel for port 1, print PROBE lines with the client's reject reasons")
	var af algoFlags
	af.register(fs)
	fs.Parse(args)
	if *clientKey == "" {
		*clientKey = getenv("VTUNNEL_CLIENT_KEY")
	}

	cfg := &ssh.ServerConfig{ServerVersion: *version}
	af.apply(&cfg.Config)
	if *clientKey != "" {
		pub, err := parsePub(*clientKey)
		if err != nil {
			log.Printf("error: %v", err)
			return 2
		}
		sp, _ := ssh.NewPublicKey(pub)
		want := sp.Marshal()
		hk, err := derivedHostKey(pub)
		if err != nil {
			log.Printf("error: %v", err)
			return 2
		}
		cfg.AddHostKey(hk)
		cfg.PublicKeyCallback = func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), want) {
				return nil, nil
			}
			event("AUTH_REJECT user=%s key=%s", c.User(), ssh.FingerprintSHA256(k))
			return nil, fmt.Errorf("unauthorized key")
		}
		event("HOSTKEY %s", bytes.TrimSpace(ssh.MarshalAuthorizedKey(hk.PublicKey())))
	} else {
		log.Printf("WARNING: running without a client key: any client can connect (none auth), ephemeral host key")
		hk, err := makeHostKey(*hostKeyType)
		if err != nil {
			log.Printf("error: %v", err)
			return 2
		}
		cfg.AddHostKey(hk)
		cfg.NoClientAuth = true
		event("HOSTKEY %s", bytes.TrimSpace(ssh.MarshalAuthorizedKey(hk.PublicKey())))
	}
	cfg.AuthLogCallback = func(c ssh.ConnMetadata, method string, err error) {
		if err == nil {
			event("AUTH_OK user=%s method=%s", c.User(), method)
		}
	}

	s := &server{cfg: cfg, keepalive: *keepalive, wait: *wait, probe: *probe,
		activeCh: make(chan struct{}), listeners: map[int]net.Listener{}}

	ln, err := net.Listen("tcp", net.JoinHostPort(*bind, strconv.Itoa(*port)))
	if err != nil {
		log.Printf("error: %v", err)
		return 1
	}
	event("LISTENING %d", ln.Addr().(*net.TCPAddr).Port)

	if !ws {
		for {
			c, err := ln.Accept()
			if err != nil {
				log.Printf("accept: %v", err)
				return 1
			}
			go s.handleConn(c)
		}
	}

	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("ok"))
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			log.Printf("upgrade %s: %v", r.URL.Path, err)
			return
		}
		event("WS_ACCEPT path=%s remote=%s", r.URL.Path, r.RemoteAddr)
		s.handleConn(newWSConn(c))
	})
	hs := &http.Server{Handler: mux}
	if *tlsCert != "" {
		err = hs.ServeTLS(ln, *tlsCert, *tlsKey)
	} else {
		err = hs.Serve(ln)
	}
	log.Printf("http: %v", err)
	return 1
}

func (s *server) setActive(c *ssh.ServerConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active = c
	close(s.activeCh)
	s.activeCh = make(chan struct{})
}

func (s *server) clearActive(c *ssh.ServerConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == c {
		s.active = nil
	}
}

func (s *server) waitSession() *ssh.ServerConn {
	deadline := time.Now().Add(s.wait)
	for {
		s.mu.Lock()
		c, ch := s.active, s.activeCh
		s.mu.Unlock()
		if c != nil {
			return c
		}
		rem := time.Until(deadline)
		if rem <= 0 {
			return nil
		}
		t := time.NewTimer(rem)
		select {
		case <-ch:
			t.Stop()
		case <-t.C:
			return nil
		}
	}
}

func (s *server) handleConn(nc net.Conn) {
	defer nc.Close()
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.cfg)
	if err != nil {
		event("SSH_HANDSHAKE_FAILED err=%q", err.Error())
		return
	}
	s.mu.Lock()
	s.sessions++
	id := s.sessions
	s.mu.Unlock()
	event("SESSION_START id=%d user=%s client=%q", id, sc.User(), sc.ClientVersion())
	s.setActive(sc)

	go func() {
		for nch := range chans {
			event("CHANNEL_REJECT type=%s", nch.ChannelType())
			nch.Reject(ssh.Prohibited, "channels not allowed")
		}
	}()
	if s.probe {
		go s.probeChannels(sc)
	}
	if s.keepalive > 0 {
		go func() {
			t := time.NewTicker(s.keepalive)
			defer t.Stop()
			for range t.C {
				var ok bool
				var data []byte
				err := withTimeout(s.keepalive, func() (e error) { ok, data, e = sc.SendRequest("ping", true, nil); return })
				if err != nil {
					event("KEEPALIVE_FAILED id=%d err=%q", id, err.Error())
					sc.Close()
					return
				}
				event("KEEPALIVE_REPLY id=%d ok=%v data=%q", id, ok, data)
			}
		}()
	}
	for req := range reqs {
		s.handleRequest(req)
	}
	s.clearActive(sc)
	if err := sc.Wait(); err != nil {
		event("SESSION_END id=%d err=%q", id, err.Error())
	} else {
		event("SESSION_END id=%d", id)
	}
}

func (s *server) handleRequest(req *ssh.Request) {
	switch req.Type {
	case "ping":
		event("REQUEST ping")
		req.Reply(true, []byte("pong"))
	case "listen":
		var lr listenReq
		if err := json.Unmarshal(req.Payload, &lr); err != nil {
			event("LISTEN_FAILED payload=%q err=%q", req.Payload, err.Error())
			req.Reply(false, []byte("invalid listen request: "+err.Error()))
			return
		}
		if err := s.listen(lr); err != nil {
			event("LISTEN_FAILED port=%d err=%q", lr.Port, err.Error())
			req.Reply(false, []byte(err.Error()))
			return
		}
		req.Reply(true, nil)
	default:
		event("REQUEST_UNKNOWN type=%s want_reply=%v", req.Type, req.WantReply)
		if req.WantReply {
			req.Reply(false, nil)
		}
	}
}

func (s *server) listen(lr listenReq) error {
	if lr.Port < 1 || lr.Port > 65535 {
		return fmt.Errorf("invalid port %d", lr.Port)
	}
	if lr.LocalAddr != "" {
		if h, _, err := net.SplitHostPort(lr.LocalAddr); err == nil &&
			h != "localhost" && h != "127.0.0.1" && h != "::1" {
			event("MAPPING %s -> 127.0.0.1:%d", lr.LocalAddr, lr.Port)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.listeners[lr.Port]; ok {
		event("LISTEN_OK port=%d reused=true", lr.Port)
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(lr.Port))
	if err != nil {
		return err
	}
	s.listeners[lr.Port] = ln
	event("LISTEN_OK port=%d reused=false local_addr=%q", lr.Port, lr.LocalAddr)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				log.Printf("listener %d: %v", lr.Port, err)
				return
			}
			go s.tunnel(c, lr.Port)
		}
	}()
	return nil
}

func (s *server) tunnel(c net.Conn, port int) {
	sc := s.waitSession()
	if sc == nil {
		event("TUNNEL_NO_CLIENT port=%d", port)
		c.Close()
		return
	}
	data, _ := json.Marshal(tunnelData{Port: port})
	ch, reqs, err := sc.OpenChannel("tunnel", data)
	if err != nil {
		event("TUNNEL_OPEN_FAILED port=%d err=%q", port, err.Error())
		c.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	event("TUNNEL_OPEN port=%d", port)
	up, down := pipe(c, ch)
	event("TUNNEL_CLOSED port=%d to_client=%d from_client=%d", port, up, down)
}

// probeChannels checks the client's channel-open policy (PROTOCOL.md: other types -> 3,
// bad JSON -> 2, unknown port -> 2 "no forward for port").
func (s *server) probeChannels(sc *ssh.ServerConn) {
	probes := []struct {
		name, typ string
		data      []byte
	}{
		{"unknown-type", "x-vtpeer-probe", nil},
		{"bad-json", "tunnel", []byte("{not json")},
		{"unknown-port", "tunnel", []byte(`{"port":1}`)},
	}
	for _, p := range probes {
		ch, reqs, err := sc.OpenChannel(p.typ, p.data)
		if err == nil {
			go ssh.DiscardRequests(reqs)
			ch.Close()
			event("PROBE %s accepted", p.name)
			continue
		}
		if oe, ok := err.(*ssh.OpenChannelError); ok {
			event("PROBE %s reason=%d message=%q", p.name, uint32(oe.Reason), oe.Message)
		} else {
			event("PROBE %s err=%q", p.name, err.Error())
		}
	}
	event("PROBE done")
}
