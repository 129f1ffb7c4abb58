package main

import (
	"math"
	"testing"
)

func TestSignTest(t *testing.T) {
	for _, c := range []struct {
		wins, n int
		want    float64
	}{
		{0, 0, 1},
		{5, 10, 1},
		{10, 10, 2.0 / 1024},
		{0, 10, 2.0 / 1024},
		{8, 10, 2 * 56.0 / 1024}, // P(X ≤ 2) = (1+10+45)/1024
		{3, 4, 2 * 5.0 / 16},
	} {
		if got := signTest(c.wins, c.n); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("signTest(%d, %d) = %g, want %g", c.wins, c.n, got, c.want)
		}
	}
}

func TestMedianCI(t *testing.T) {
	seq := func(n int) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(n - i) // reversed: medianCI must sort
		}
		return xs
	}
	for _, c := range []struct {
		n      int
		ok     bool
		lo, hi float64
	}{
		{5, false, 0, 0}, // 2·P(X ≤ 0) = 1/16 > 0.05
		{6, true, 1, 6},  // 2/64 ≤ 0.05
		{10, true, 2, 9}, // 2·P(X ≤ 1) = 22/1024; 2·P(X ≤ 2) = 112/1024 > 0.05
		{25, true, 8, 18},
	} {
		lo, hi, ok := medianCI(seq(c.n))
		if ok != c.ok || lo != c.lo || hi != c.hi {
			t.Errorf("medianCI(1..%d) = %g, %g, %v; want %g, %g, %v", c.n, lo, hi, ok, c.lo, c.hi, c.ok)
		}
	}
}
