package pattern

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestPow10Table(t *testing.T) {
	// Entries of strconv's own table.
	for _, c := range []struct {
		e      int
		hi, lo uint64
	}{
		{-348, 0xfa8fd5a0081c0288, 0x1732c869cd60e453}, {-1, 0xcccccccccccccccc, 0xcccccccccccccccc},
		{0, 0x8000000000000000, 0}, {1, 0xa000000000000000, 0}, {22, 0x878678326eac9000, 0},
		{23, 0xa968163f0a57b400, 0}, {347, 0xd13eb46469447567, 0x4b7195f2d2d1a9fb},
	} {
		if got := pow10Table()[c.e-pow10Min]; got != [2]uint64{c.hi, c.lo} {
			t.Errorf("1e%d: %#x, want %#x %#x", c.e, got, c.hi, c.lo)
		}
	}
}

// randomLiteral returns a JSON number literal with up to maxDigits digits
// and a wide exponent.
func randomLiteral(rng *rand.Rand, maxDigits int) string {
	var b strings.Builder
	if rng.IntN(2) == 0 {
		b.WriteByte('-')
	}
	n := 1 + rng.IntN(maxDigits)
	digits := make([]byte, n)
	for i := range digits {
		digits[i] = byte('0' + rng.IntN(10))
	}
	if digits[0] == '0' && n > 1 {
		digits[0] = byte('1' + rng.IntN(9))
	}
	switch point := rng.IntN(n + 1); {
	case point == 0 || point == n || digits[0] == '0':
		b.Write(digits)
	default:
		b.Write(digits[:point])
		b.WriteByte('.')
		b.Write(digits[point:])
	}
	if rng.IntN(3) == 0 {
		b.WriteString([]string{"e", "E", "e+", "e-", "E-"}[rng.IntN(5)])
		b.WriteString(strconv.Itoa(rng.IntN(340)))
	}
	return b.String()
}

func TestParseFloatMatchesStrconv(t *testing.T) {
	lits := []string{"0", "-0", "0.0", "-0.0e5", "1", "0.1", "0.000123", "1e22", "1e23", "9007199254740992", "9007199254740993",
		"123456789012345678", "1234567890123456789", "12345678901234567890", "0.00000000000000000000000001234567890123456789",
		"1.7976931348623157e308", "1.7976931348623159e308", "2.2250738585072014e-308", "2.2250738585072011e-308", "4.9e-324",
		"2.4e-324", "1e-400", "1e400", "1e99999999999", "0e99999999999", "2.5e-324", "7.2057594037927933e16", "27.436246478254433",
		"50.123456789012345", "1797693134862315708145274237317043567981e269", "9223372036854775807", "18446744073709551615",
		"18446744073709551616", "9999999999999999999", "99999999999999999999"}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 300_000 {
		lits = append(lits, randomLiteral(rng, 20))
	}
	// Halfway cases: the float64 halfway between two neighbours, printed
	// exactly, and a hair above and below it.
	for range 20_000 {
		f := math.Float64frombits(rng.Uint64() &^ (1 << 63))
		if math.IsInf(f, 0) || math.IsNaN(f) {
			continue
		}
		lits = append(lits, strconv.FormatFloat(f, 'g', -1, 64), strconv.FormatFloat(f, 'e', 16, 64), strconv.FormatFloat(f, 'e', 18, 64))
	}
	for _, lit := range lits {
		want, err := strconv.ParseFloat(lit, 64)
		got, ok := parseFloat([]byte(lit))
		if ok != (err == nil) || ok && math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%s: %v %v, strconv gives %v %v", lit, got, ok, want, err)
		}
	}
}
