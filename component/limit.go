package component

import (
	"sync"
	"time"
)

// logLimiter lets a log line through once per key and minute: a full
// queue or a slow server must be visible, not flood the log.
type logLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (l *logLimiter) first(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = make(map[string]time.Time)
	}
	if t, ok := l.last[key]; ok && time.Since(t) < time.Minute {
		return false
	}
	l.last[key] = time.Now()
	return true
}
