package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/jinglepush/jinglepush/sessions"
)

// What the operator's commands (push-test, devices, trace) share: flags in
// any order around the arguments, the configuration of the running
// service, and its Redis.

// errUsage is a command line that cannot be run, errHelp one that asked
// for the usage; the command has printed what it has to say.
var (
	errUsage = errors.New("usage")
	errHelp  = errors.New("help")
)

// command is the flags of one operator command, with -config.
type command struct {
	fs     *flag.FlagSet
	path   *string
	stderr io.Writer
}

func newCommand(name, args string, stderr io.Writer) *command {
	fs := flag.NewFlagSet("jinglepush "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &command{fs: fs, stderr: stderr}
	c.path = fs.String("config", "config.toml", "the TOML configuration `file` of the running jinglepush")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: jinglepush %s [flags] %s\n", name, args)
		fs.PrintDefaults()
	}
	return c
}

// parse reads the flags wherever they are among the arguments (Go's flag
// package stops at the first argument) and checks how many arguments
// there are.
func (c *command) parse(args []string, least, most int) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		} else if err != nil {
			return nil, errUsage
		}
		if args = c.fs.Args(); len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) < least || len(pos) > most {
		c.fs.Usage()
		return nil, errUsage
	}
	return pos, nil
}

// config loads the configuration file, environment variables included,
// as the service itself does.
func (c *command) config(environ []string) (Config, error) {
	cfg, err := Load(*c.path, environ)
	if err != nil {
		return Config{}, fmt.Errorf("%s: configuration is not valid:\n%w", *c.path, err)
	}
	return cfg, nil
}

// exit is the exit code of a command's error: 2 for the command line, 1
// for anything else, which it prints.
func (c *command) exit(err error) int {
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(c.stderr, "jinglepush:", err)
	return 1
}

// openStore connects to the service's Redis, under its key prefix.
func openStore(ctx context.Context, cfg Config) (*sessions.Store, func(), error) {
	rdb := newRedisClient(cfg.Redis)
	store := sessions.NewStore(rdb, cfg.Redis.KeyPrefix, sessions.StoreOptions{TraceTTL: cfg.Calls.TraceTTL})
	if err := store.Ping(ctx); err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return store, func() { rdb.Close() }, nil
}

// bareJID reads an account as the service names it: a bare JID in its
// normal form (what the server stamps on stanzas).
func bareJID(s string) (string, error) {
	j, err := jid.Parse(strings.TrimSpace(s))
	if err != nil || j.Localpart() == "" {
		return "", fmt.Errorf("%q is not an account (a bare JID such as bob@example.com)", s)
	}
	if j.Resourcepart() != "" {
		return "", fmt.Errorf("%q names a resource; give the account, %s", s, j.Bare())
	}
	return j.Bare().String(), nil
}
