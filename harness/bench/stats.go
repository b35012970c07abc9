package bench

import (
	"math"
	"sort"
)

// Stat summarises every round of one quantity: the median, and the spread.
type Stat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

func stat(v []float64) Stat {
	if len(v) == 0 {
		return Stat{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return Stat{Median: percentile(s, 50), Min: s[0], Max: s[len(s)-1], Values: v}
}

func median(v []float64) float64 { return percentile(v, 50) }

// percentile uses the nearest-rank method (the median of an even count is the lower middle).
func percentile(v []float64, p int) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	idx := (p*len(s)+99)/100 - 1
	return s[max(0, min(idx, len(s)-1))]
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
