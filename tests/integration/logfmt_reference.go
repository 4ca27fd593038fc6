// Reads logfmt records on stdin with go-logfmt's decoder (Debian's
// golang-github-go-logfmt-logfmt-dev), the reference for the access log's logfmt lines that
// test_access_log_file.py checks them against, and prints each record as one JSON object of its
// keys and values. A record that does not decode, or that names a key twice, is an error: it is
// printed on stderr and the exit status is 1.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/go-logfmt/logfmt"
)

func main() {
	dec := logfmt.NewDecoder(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for n := 1; dec.ScanRecord(); n++ {
		record := map[string]string{}
		for dec.ScanKeyval() {
			key := string(dec.Key())
			if _, seen := record[key]; seen {
				fmt.Fprintf(os.Stderr, "record %d: the key %q twice\n", n, key)
				os.Exit(1)
			}
			record[key] = string(dec.Value())
		}
		if err := dec.Err(); err != nil {
			fmt.Fprintf(os.Stderr, "record %d: %v\n", n, err)
			os.Exit(1)
		}
		if err := out.Encode(record); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := dec.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
