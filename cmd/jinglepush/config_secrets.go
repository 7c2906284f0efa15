package main

import (
	"encoding"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Secret is a string that never prints: fmt, slog and encoding/json show
// "<secret>" (or nothing when it is empty). Use string(s) where the value is
// needed.
type Secret string

const redacted = "<secret>"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString covers %#v, which does not use String.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MarshalText covers encoding/json and slog.JSONHandler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

var _ encoding.TextMarshaler = Secret("")

// maxSecretSize bounds a *_file secret: a larger file is the wrong file.
const maxSecretSize = 64 << 10

// readSecretFiles puts the contents of each *_file secret in its Secret.
func (c *Config) readSecretFiles() []error {
	var errs []error
	read := func(key, path string, dst *Secret, fromFile *bool) {
		if path == "" || *dst != "" {
			return // nothing to read, or both set (check says so)
		}
		s, err := readSecret(path)
		if err != nil {
			errs = append(errs, &problem{key: key, msg: err.Error(), stage: stageValue, err: err})
			return
		}
		*dst, *fromFile = s, true
	}
	read("xmpp.secret_file", c.XMPP.SecretFile, &c.XMPP.Secret, &c.XMPP.secretFromFile)
	read("redis.password_file", c.Redis.PasswordFile, &c.Redis.Password, &c.Redis.passwordFromFile)
	read("redis.sentinel_password_file", c.Redis.SentinelPasswordFile, &c.Redis.SentinelPassword, &c.Redis.sentinelPasswordFromFile)
	for i := range c.APNs.Apps {
		a := &c.APNs.Apps[i]
		read(fmt.Sprintf("apns.apps[%d].certificate_password_file", i), a.CertificatePasswordFile, &a.CertificatePassword, &a.passwordFromFile)
	}
	return errs
}

func readSecret(path string) (Secret, error) {
	if err := checkFile(path); err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	switch {
	case err != nil:
		return "", err
	case len(b) > maxSecretSize:
		return "", fmt.Errorf("%s is larger than %d KiB", path, maxSecretSize>>10)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return Secret(s), nil
}

// checkFile tells whether path is a regular file that can be opened (a FIFO
// or a device is refused: reading it could block or never end).
func checkFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}
