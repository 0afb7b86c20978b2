// vtpeer: an independent test peer for the vtunnel protocol, written from
// /work/shared/spec/PROTOCOL.md on top of golang.org/x/crypto/ssh and
// github.com/gorilla/websocket. It implements both roles (server and client)
// over WebSocket, the same roles over plain TCP SSH (sshserver / sshclient),
// and keygen. Machine-readable events go to stdout, one per line; diagnostics
// go to stderr.
package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	privPrefix = "vt-priv-"
	pubPrefix  = "vt-pub-"
	sshUser    = "vtunnel"
)

var b64 = base64.RawStdEncoding

// ---------- events ----------

var eventMu sync.Mutex

// eventOut is stdout, except in sshclient -direct mode where stdout carries channel data.
var eventOut io.Writer = os.Stdout

// event prints one machine-readable line on stdout (flushed immediately).
func event(format string, args ...interface{}) {
	eventMu.Lock()
	defer eventMu.Unlock()
	fmt.Fprintf(eventOut, format+"\n", args...)
}

// ---------- keys ----------

func parsePriv(s string) (ed25519.PrivateKey, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, privPrefix) {
		return nil, fmt.Errorf("private key must start with %q", privPrefix)
	}
	raw, err := b64.DecodeString(s[len(privPrefix):])
	if err != nil {
		return nil, fmt.Errorf("private key: bad base64: %v", err)
	}
	if len(raw) != ed25519.SeedSize {
		return nil, fmt.Errorf("private key: decoded length %d, want 32", len(raw))
	}
	return ed25519.NewKeyFromSeed(raw), nil
}

func parsePub(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, pubPrefix) {
		return nil, fmt.Errorf("public key must start with %q", pubPrefix)
	}
	raw, err := b64.DecodeString(s[len(pubPrefix):])
	if err != nil {
		return nil, fmt.Errorf("public key: bad base64: %v", err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key: decoded length %d, want 32", len(raw))
	}
	return ed25519.PublicKey(raw), nil
}

// derivedHostKey returns the ed25519 host key whose seed is
// SHA-256(wire(client public key)).
func derivedHostKey(clientPub ed25519.PublicKey) (ssh.Signer, error) {
	sp, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		return nil, err
	}
	seed := sha256.Sum256(sp.Marshal())
	return ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(seed[:]))
}

func cmdKeygen(args []string) {
	var seed [32]byte
	if _, err := io.ReadFull(rand.Reader, seed[:]); err != nil {
		log.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(seed[:])
	fmt.Printf("Private key (client): %s%s\n", privPrefix, b64.EncodeToString(seed[:]))
	fmt.Printf("Public key (server):  %s%s\n", pubPrefix, b64.EncodeToString(priv.Public().(ed25519.PublicKey)))
}

// cmdPubkey: vtpeer pubkey vt-priv-...  -> vt-pub-...
func cmdPubkey(args []string) {
	if len(args) != 1 {
		log.Fatal("usage: vtpeer pubkey vt-priv-...")
	}
	priv, err := parsePriv(args[0])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pubPrefix + b64.EncodeToString(priv.Public().(ed25519.PublicKey)))
}

// cmdHostkey: vtpeer hostkey vt-pub-...  -> authorized_keys style line of the derived host key
func cmdHostkey(args []string) {
	if len(args) != 1 {
		log.Fatal("usage: vtpeer hostkey vt-pub-...")
	}
	pub, err := parsePub(args[0])
	if err != nil {
		log.Fatal(err)
	}
	s, err := derivedHostKey(pub)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

// ---------- common flags ----------

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

type algoFlags struct {
	kex, cipher, mac string
	rekey            uint64
}

func (a *algoFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.kex, "kex", "", "comma-separated kex algorithms (default: x/crypto defaults)")
	fs.StringVar(&a.cipher, "cipher", "", "comma-separated ciphers (default: x/crypto defaults)")
	fs.StringVar(&a.mac, "mac", "", "comma-separated MACs (default: x/crypto defaults)")
	fs.Uint64Var(&a.rekey, "rekey", 0, "ssh.Config.RekeyThreshold in bytes (0 = cipher default; min 256)")
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (a *algoFlags) apply(c *ssh.Config) {
	c.KeyExchanges = splitList(a.kex)
	c.Ciphers = splitList(a.cipher)
	c.MACs = splitList(a.mac)
	c.RekeyThreshold = a.rekey
}

// makeHostKey creates an ephemeral host key of the given type.
func makeHostKey(typ string) (ssh.Signer, error) {
	switch typ {
	case "ecdsa", "ecdsa-sha2-nistp256", "":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return ssh.NewSignerFromKey(k)
	case "ecdsa384", "ecdsa-sha2-nistp384":
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return ssh.NewSignerFromKey(k)
	case "ecdsa521", "ecdsa-sha2-nistp521":
		k, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return ssh.NewSignerFromKey(k)
	case "ed25519", "ssh-ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return ssh.NewSignerFromKey(k)
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		return ssh.NewSignerFromKey(k)
	}
	return nil, fmt.Errorf("unknown host key type %q (ecdsa|ecdsa384|ecdsa521|ed25519|rsa)", typ)
}

// ---------- piping ----------

type closeWriter interface{ CloseWrite() error }

// pipe copies both ways between a and b; when one direction hits EOF the
// write side of the other is half-closed. Returns when both directions end,
// after closing both.
func pipe(a, b io.ReadWriteCloser) (ab, ba int64) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src io.ReadWriteCloser, n *int64) {
		defer wg.Done()
		*n, _ = io.Copy(dst, src)
		if cw, ok := dst.(closeWriter); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go cp(b, a, &ab)
	go cp(a, b, &ba)
	wg.Wait()
	a.Close()
	b.Close()
	return
}

// ---------- main ----------

func usage() {
	fmt.Fprintf(os.Stderr, `usage: vtpeer <mode> [flags]
modes:
  keygen                         print a vt-priv/vt-pub pair (two lines)
  pubkey vt-priv-...             print the vt-pub for a private key
  hostkey vt-pub-...             print the derived host key (authorized_keys format)
  server    -port P [...]        vtunnel server over WebSocket (HTTP on 127.0.0.1:P)
  client    -server ws://... [...] vtunnel client over WebSocket
  sshserver -port P [...]        same server semantics over plain TCP SSH
  sshclient -addr H:P [...]      same client semantics over plain TCP SSH (+ -ping, -direct, -open, -request)
run 'vtpeer <mode> -h' for flags
`)
	os.Exit(2)
}

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("vtpeer: ")
	if len(os.Args) < 2 {
		usage()
	}
	mode, args := os.Args[1], os.Args[2:]
	switch mode {
	case "keygen":
		cmdKeygen(args)
	case "pubkey":
		cmdPubkey(args)
	case "hostkey":
		cmdHostkey(args)
	case "server":
		os.Exit(cmdServer(args, true))
	case "sshserver":
		os.Exit(cmdServer(args, false))
	case "client":
		os.Exit(cmdClient(args, true))
	case "sshclient":
		os.Exit(cmdClient(args, false))
	default:
		usage()
	}
}

var errTimeout = errors.New("timeout")

// withTimeout runs f and returns errTimeout if it does not finish within d.
func withTimeout(d time.Duration, f func() error) error {
	if d <= 0 {
		return f()
	}
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return errTimeout
	}
}
