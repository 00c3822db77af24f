package main

import (
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p50, p99, mx := percentiles(d)
	if p50 != 50*time.Millisecond || p99 != 99*time.Millisecond || mx != 100*time.Millisecond {
		t.Errorf("p50 %v p99 %v max %v; want 50ms 99ms 100ms", p50, p99, mx)
	}
	if d[0] != 100*time.Millisecond {
		t.Error("percentiles sorted its input in place")
	}
	if p50, p99, mx := percentiles([]time.Duration{7}); p50 != 7 || p99 != 7 || mx != 7 {
		t.Errorf("one sample: %v %v %v", p50, p99, mx)
	}
	if p50, _, _ := percentiles(nil); p50 != 0 {
		t.Errorf("no samples: %v", p50)
	}
}
