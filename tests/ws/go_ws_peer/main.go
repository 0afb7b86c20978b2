// WebSocket peer for the interop tests on gorilla/websocket, the library the Go original
// uses. Built in GOPATH mode against Debian's golang-github-gorilla-websocket-dev.
//
//	go_ws_peer server          listen on 127.0.0.1:0, print "READY <port>", serve one
//	                           connection: echo binary messages until the peer closes
//	go_ws_peer client PORT     dial ws://127.0.0.1:PORT/tunnel: echo of many sizes (our
//	                           server may re-frame: boundaries mean nothing), ping/pong,
//	                           close with 4002 and expect it echoed
//
// Exit status 0 on success; the reason on stderr otherwise.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/websocket"
)

func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i*131 + seed) >> 3)
	}
	return b
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go_ws_peer: "+format+"\n", args...)
	os.Exit(1)
}

func server() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	fmt.Printf("READY %d\n", ln.Addr().(*net.TCPAddr).Port)
	done := make(chan error, 1)
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		for {
			kind, data, err := c.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure {
					done <- nil
				} else {
					done <- err
				}
				return
			}
			if err := c.WriteMessage(kind, data); err != nil {
				done <- err
				return
			}
		}
	})
	go http.Serve(ln, mux)
	select {
	case err := <-done:
		if err != nil {
			fail("server: %v", err)
		}
	case <-time.After(60 * time.Second):
		fail("server: timeout")
	}
}

func readExactly(c *websocket.Conn, n int) []byte {
	var got bytes.Buffer
	for got.Len() < n {
		kind, data, err := c.ReadMessage()
		if err != nil {
			fail("read after %d of %d bytes: %v", got.Len(), n, err)
		}
		if kind != websocket.BinaryMessage {
			fail("expected binary messages only")
		}
		got.Write(data)
	}
	return got.Bytes()
}

func client(port string) {
	c, resp, err := websocket.DefaultDialer.Dial("ws://127.0.0.1:"+port+"/tunnel", http.Header{"X-Client": {"gorilla"}})
	if err != nil {
		fail("dial: %v", err)
	}
	if resp.StatusCode != 101 {
		fail("status %d", resp.StatusCode)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for _, size := range []int{1, 125, 126, 65535, 65536, 300000, 4 << 20} {
		data := pattern(size, size)
		if err := c.WriteMessage(websocket.BinaryMessage, data); err != nil {
			fail("write %d: %v", size, err)
		}
		if !bytes.Equal(readExactly(c, size), data) {
			fail("echo of %d bytes differs", size)
		}
	}
	pong := make(chan string, 1)
	c.SetPongHandler(func(data string) error { pong <- data; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("gorilla ping"), time.Now().Add(5*time.Second)); err != nil {
		fail("ping: %v", err)
	}
	// The pong handler runs inside reads: send one more message to read past it.
	if err := c.WriteMessage(websocket.BinaryMessage, []byte("after ping")); err != nil {
		fail("write: %v", err)
	}
	readExactly(c, 10)
	select {
	case p := <-pong:
		if p != "gorilla ping" {
			fail("pong payload %q", p)
		}
	default:
		fail("no pong")
	}
	msg := websocket.FormatCloseMessage(4002, "client done")
	if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
		fail("close: %v", err)
	}
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4002 {
		fail("expected our close echoed with 4002, got %v", err)
	}
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "server" {
		server()
		return
	}
	if len(os.Args) >= 3 && os.Args[1] == "client" {
		client(os.Args[2])
		return
	}
	fail("usage: go_ws_peer server | client PORT")
}
