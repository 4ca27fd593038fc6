// The Go peer: net/http serving GET /fact over a Unix socket (or TCP), one fact per request.
package main

import (
	"math/rand"
	"net"
	"net/http"
	"os"
	"strings"
)

var facts = []string{
	"Printers can smell fear, but only in cyan.\n",
	"A group of printers is called a jam.\n",
	"Printers dream in CMYK and wake up in grayscale.\n",
	"The plural of \"printer manual\" is \"unopened\".\n",
}

func main() {
	addr := os.Args[1]
	var l net.Listener
	var err error
	if strings.HasPrefix(addr, "unix:") {
		path := strings.TrimPrefix(addr, "unix:")
		os.Remove(path)
		l, err = net.Listen("unix", path)
	} else {
		l, err = net.Listen("tcp", strings.TrimPrefix(addr, "tcp:"))
	}
	if err != nil {
		panic(err)
	}
	http.HandleFunc("/fact", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(facts[rand.Intn(len(facts))]))
	})
	panic(http.Serve(l, nil))
}
