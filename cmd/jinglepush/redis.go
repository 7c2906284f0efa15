package main

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The kinds of Redis [redis] can name.
const (
	redisSingle   = "single"   // one address
	redisCluster  = "cluster"  // several addresses: seeds of a Redis Cluster
	redisSentinel = "sentinel" // master_name set: the addresses are Sentinels
)

// Kind says which Redis the section names.
func (r RedisConfig) Kind() string {
	switch {
	case r.MasterName != "":
		return redisSentinel
	case len(r.Addrs) > 1:
		return redisCluster
	}
	return redisSingle
}

// newRedisClient builds the go-redis client for r: a plain client, a
// cluster client that follows failovers, or Sentinel's failover client.
// Nothing is dialled yet.
func newRedisClient(r RedisConfig) redis.UniversalClient {
	switch r.Kind() {
	case redisSentinel:
		// The failover client asks the Sentinels for the master at each
		// dial and drops its connections when they announce a new one.
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:       r.MasterName,
			SentinelAddrs:    r.Addrs,
			SentinelUsername: r.SentinelUsername,
			SentinelPassword: string(r.SentinelPassword),
			Username:         r.Username,
			Password:         string(r.Password),
			DB:               r.DB,
			DialTimeout:      r.DialTimeout,
			ReadTimeout:      r.Timeout,
			WriteTimeout:     r.Timeout,
			PoolSize:         r.PoolSize,
		})
	case redisCluster:
		cc := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                      r.Addrs,
			Username:                   r.Username,
			Password:                   string(r.Password),
			DialTimeout:                r.DialTimeout,
			ReadTimeout:                r.Timeout,
			WriteTimeout:               r.Timeout,
			PoolSize:                   r.PoolSize,
			ClusterStateReloadInterval: r.ClusterRefresh,
		})
		cc.AddHook(reloadOnError{cc})
		return cc
	}
	return redis.NewClient(&redis.Options{
		Addr:         r.Addrs[0],
		Username:     r.Username,
		Password:     string(r.Password),
		DB:           r.DB,
		DialTimeout:  r.DialTimeout,
		ReadTimeout:  r.Timeout,
		WriteTimeout: r.Timeout,
		PoolSize:     r.PoolSize,
	})
}

// reloadOnError makes a cluster client read the slot map again as soon as
// a command fails for want of its node. A master that dies sends no MOVED:
// without this the client would keep its slots on the dead address until
// the next periodic reload (redis.cluster_refresh).
type reloadOnError struct{ cc *redis.ClusterClient }

func (h reloadOnError) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

func (h reloadOnError) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnError) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnError) check(ctx context.Context, err error) {
	if topologyError(err) {
		h.cc.ReloadState(ctx) // asynchronous, and at most one at a time
	}
}

// topologyError reports whether err may mean the slot map is stale: the
// node did not answer, or said the cluster is changing. A reply such as a
// script's error says nothing about the map.
func topologyError(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return false
	}
	var reply redis.Error
	if !errors.As(err, &reply) {
		return true // network, timeout, closed pool
	}
	for _, p := range []string{"CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "LOADING"} {
		if strings.HasPrefix(err.Error(), p) {
			return true
		}
	}
	return false
}
