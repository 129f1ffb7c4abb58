package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// The paired comparison between two proxies: every round ran both a few
// seconds apart, so the rounds' ratios carry the difference between the
// two without the machine's drift from round to round. A median with no
// error bar cannot say whether a 3 % lead is real on a machine whose runs
// move by ±5–10 %; the sign test and the distribution-free interval below
// can, and they assume nothing about how the ratios are spread.

// binomCDF is P(X ≤ k) for X ~ Binomial(n, 1/2).
func binomCDF(k, n int) float64 {
	if k < 0 {
		return 0
	}
	if k >= n {
		return 1
	}
	sum, c := 0.0, 1.0 // c = C(n, i)
	for i := 0; i <= k; i++ {
		if i > 0 {
			c = c * float64(n-i+1) / float64(i)
		}
		sum += c
	}
	return sum * math.Pow(0.5, float64(n))
}

// signTest is the two-sided p-value of wins out of n under the
// hypothesis that either side wins a round with probability one half.
func signTest(wins, n int) float64 {
	if n == 0 {
		return 1
	}
	return min(1, 2*binomCDF(min(wins, n-wins), n))
}

// medianCI is a confidence interval of at least 95 % for the median of
// the population rs were drawn from: the order statistics r(k) and
// r(n+1-k), with k the largest that keeps 2·P(X ≤ k-1) ≤ 0.05. ok is
// false when there are too few values (fewer than six) for one.
func medianCI(rs []float64) (lo, hi float64, ok bool) {
	s := slices.Clone(rs)
	slices.Sort(s)
	n, k := len(s), 0
	for k+1 <= n/2 && 2*binomCDF(k, n) <= 0.05 {
		k++
	}
	if k == 0 {
		return 0, 0, false
	}
	return s[k-1], s[n-k], true
}

// headToHead prints, for each Skiff build, how it fared round by round
// against each HAProxy and Caddy of the same balance that ran.
func headToHead(runs map[string][]result, order []string) {
	p2c := func(n string) bool { return strings.HasSuffix(n, "-p2c") }
	peer := map[string]bool{"haproxy": true, "haproxy-log": true, "caddy": true}
	var lines []string
	for _, a := range order {
		if !strings.HasPrefix(a, "skiff") {
			continue
		}
		for _, b := range order {
			if !peer[strings.TrimSuffix(b, "-p2c")] || p2c(a) != p2c(b) {
				continue
			}
			rps := roundRatios(runs[a], runs[b], 0)
			if len(rps) == 0 {
				continue
			}
			wins := 0
			for _, r := range rps {
				if r > 1 {
					wins++
				}
			}
			ci := "–"
			if lo, hi, ok := medianCI(rps); ok {
				ci = fmt.Sprintf("%.2f–%.2f", lo, hi)
			}
			lines = append(lines, fmt.Sprintf("| %s vs %s | %d | %.3f | %s | %d of %d | %.3f | %.2f |",
				a, b, len(rps), medianOf(rps), ci, wins, len(rps), signTest(wins, len(rps)), medianOf(roundRatios(runs[a], runs[b], 1))))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Printf("\nHead to head, round by round (a ratio above 1 means Skiff served more; p from a two-sided sign test):\n\n| pair | rounds | median ratio req/s | 95%% interval | Skiff ahead | p | median ratio p99 |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range lines {
		fmt.Println(l)
	}
}

// medianOf is the median of xs (the upper one of an even count); zero
// for none.
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
