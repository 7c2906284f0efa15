package jingle_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata returns the raw bytes of testdata/name.
func testdata(tb testing.TB, name string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// testdataFiles lists the stanza files in testdata.
func testdataFiles(tb testing.TB) []string {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil {
		tb.Fatal(err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

// addSeeds adds every testdata stanza to a fuzz corpus.
func addSeeds(f *testing.F) {
	for _, name := range testdataFiles(f) {
		f.Add(testdata(f, name))
	}
	f.Add([]byte(""))
	f.Add([]byte("<"))
	f.Add([]byte("<message"))
	f.Add([]byte(strings.Repeat("<a>", 100)))
}
