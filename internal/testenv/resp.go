package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// respTimeout bounds one admin command, connection included: a paused
// server must turn into an error, not a hung helper.
const respTimeout = 2 * time.Second

// respError is an error reply ("-ERR ...", "-LOADING ...").
type respError string

func (e respError) Error() string { return string(e) }

// redisCall sends one command on a new connection and returns its reply:
// a string (simple or bulk), an int64, nil (null), a []any or a respError.
// The helpers use it rather than go-redis so that their waiting is plain
// request and answer, with no pool, retries or background connections.
func redisCall(addr string, args ...string) (any, error) {
	conn, err := net.DialTimeout("tcp", addr, respTimeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(respTimeout))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, err
	}
	reply, err := readReply(bufio.NewReader(conn))
	if err != nil {
		return nil, err
	}
	if e, ok := reply.(respError); ok {
		return nil, e
	}
	return reply, nil
}

// redisString calls a command whose reply is a string, e.g. INFO.
func redisString(addr string, args ...string) (string, error) {
	reply, err := redisCall(addr, args...)
	if err != nil {
		return "", err
	}
	s, ok := reply.(string)
	if !ok {
		return "", fmt.Errorf("%s answered %v, not a string", args[0], reply)
	}
	return s, nil
}

// redisOK calls a command that answers +OK.
func redisOK(addr string, args ...string) error {
	s, err := redisString(addr, args...)
	if err == nil && s != "OK" {
		err = fmt.Errorf("%s answered %q", args[0], s)
	}
	return err
}

// readReply reads one RESP2 reply.
func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return respError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		items := make([]any, n)
		for i := range items {
			if items[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		return items, nil
	}
	return nil, fmt.Errorf("unknown reply %q", line)
}

// infoFields parses the reply of INFO or CLUSTER INFO into its fields.
func infoFields(s string) map[string]string {
	m := make(map[string]string)
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}
