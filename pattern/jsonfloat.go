package pattern

import (
	"encoding/binary"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"sync"
)

// The Extractor converts the numbers it is asked for itself: sensors write
// floats with 16 or 17 digits (Go's shortest form), where simpleDecimal does
// not apply and strconv.ParseFloat spends most of its time re-reading the
// literal. parseFloat gives exactly what strconv.ParseFloat gives; it reads
// the literal once and uses the Eisel-Lemire algorithm, as strconv does
// (https://nigeltao.github.io/blog/2020/eisel-lemire.html), falling back to
// strconv where that algorithm cannot decide.

// exactPow10 are the powers of ten that a float64 holds exactly.
var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat converts a checked JSON number literal as strconv.ParseFloat
// does; ok is false when the number is out of float64's range.
func parseFloat(lit []byte) (f float64, ok bool) {
	neg := lit[0] == '-'
	i := 0
	if neg {
		i++
	}
	var man uint64
	digits, exp10 := 0, 0
	for ; i < len(lit) && lit[i] >= '0' && lit[i] <= '9'; i++ {
		if man != 0 && digits <= 11 && i+8 <= len(lit) {
			if x := binary.LittleEndian.Uint64(lit[i:]); allDigits(x) {
				man = man*1e8 + parse8(x)
				digits += 8
				i += 7
				continue
			}
		}
		if man == 0 && lit[i] == '0' {
			continue // leading zeros are no digits of the mantissa
		}
		if digits < 19 {
			man = man*10 + uint64(lit[i]-'0')
		} else {
			exp10++ // dropped, which Eisel-Lemire cannot round: see below
		}
		digits++
	}
	if i < len(lit) && lit[i] == '.' {
		for i++; i < len(lit) && lit[i] >= '0' && lit[i] <= '9'; i++ {
			if man != 0 && digits <= 11 && i+8 <= len(lit) {
				if x := binary.LittleEndian.Uint64(lit[i:]); allDigits(x) {
					man = man*1e8 + parse8(x)
					digits += 8
					exp10 -= 8
					i += 7
					continue
				}
			}
			if man == 0 && lit[i] == '0' {
				exp10--
				continue
			}
			if digits < 19 {
				man = man*10 + uint64(lit[i]-'0')
				exp10--
			}
			digits++
		}
	}
	if i < len(lit) {
		// An exponent; numberSpan checked its form.
		i++
		eneg := lit[i] == '-'
		if lit[i] == '-' || lit[i] == '+' {
			i++
		}
		e := 0
		for ; i < len(lit); i++ {
			if e < 100000 {
				e = e*10 + int(lit[i]-'0')
			}
		}
		if eneg {
			e = -e
		}
		exp10 += e
	}
	switch {
	case digits > 19:
		// Digits were dropped; strconv rounds them exactly.
		return slowFloat(lit)
	case man == 0:
		if neg {
			return math.Copysign(0, -1), true
		}
		return 0, true
	case man < 1<<53 && exp10 >= -22 && exp10 <= 22:
		// Both factors are exact, so one operation rounds correctly.
		f = float64(man)
		if exp10 < 0 {
			f /= exactPow10[-exp10]
		} else {
			f *= exactPow10[exp10]
		}
		if neg {
			f = -f
		}
		return f, true
	}
	if f, ok := eiselLemire64(man, exp10, neg); ok {
		return f, true
	}
	return slowFloat(lit)
}

func slowFloat(lit []byte) (float64, bool) {
	f, err := strconv.ParseFloat(string(lit), 64)
	return f, err == nil
}

const (
	pow10Min = -348
	pow10Max = 347
)

// pow10Table holds, for 10^e with e from pow10Min to pow10Max, the top 128
// bits of its binary expansion, truncated, as strconv's table does. It is
// computed on first use.
var pow10Table = sync.OnceValue(func() *[pow10Max - pow10Min + 1][2]uint64 {
	var t [pow10Max - pow10Min + 1][2]uint64
	ten := big.NewInt(10)
	mask := new(big.Int).SetUint64(math.MaxUint64)
	for e := pow10Min; e <= pow10Max; e++ {
		p := new(big.Int).Exp(ten, big.NewInt(int64(max(e, -e))), nil)
		var m *big.Int
		if e >= 0 {
			if s := p.BitLen() - 128; s > 0 {
				m = p.Rsh(p, uint(s))
			} else {
				m = p.Lsh(p, uint(-s))
			}
		} else {
			// floor(2^k / 10^-e) with k such that it has 128 bits.
			k := 127 + p.BitLen()
			m = new(big.Int).Quo(new(big.Int).Lsh(big.NewInt(1), uint(k)), p)
			if m.BitLen() < 128 {
				m = new(big.Int).Quo(new(big.Int).Lsh(big.NewInt(1), uint(k+1)), p)
			}
		}
		t[e-pow10Min] = [2]uint64{new(big.Int).Rsh(m, 64).Uint64(), new(big.Int).And(m, mask).Uint64()}
	}
	return &t
})

// eiselLemire64 is strconv's: man × 10^exp10 as a float64, correctly
// rounded, or ok false when it cannot tell.
func eiselLemire64(man uint64, exp10 int, neg bool) (f float64, ok bool) {
	if exp10 < pow10Min || exp10 > pow10Max {
		return 0, false
	}
	pow := pow10Table()[exp10-pow10Min]
	exp2 := 1 + (exp10*108853)>>15 // floor(exp10 × log2(10))

	clz := bits.LeadingZeros64(man)
	man <<= uint(clz)
	retExp2 := uint64(exp2+63+1023) - uint64(clz)

	xHi, xLo := bits.Mul64(man, pow[0])
	if xHi&0x1FF == 0x1FF && xLo+man < man {
		yHi, yLo := bits.Mul64(man, pow[1])
		mergedHi, mergedLo := xHi, xLo+yHi
		if mergedLo < xLo {
			mergedHi++
		}
		if mergedHi&0x1FF == 0x1FF && mergedLo+1 == 0 && yLo+man < man {
			return 0, false
		}
		xHi, xLo = mergedHi, mergedLo
	}

	msb := xHi >> 63
	retMantissa := xHi >> (msb + 9)
	retExp2 -= 1 ^ msb

	if xLo == 0 && xHi&0x1FF == 0 && retMantissa&3 == 1 {
		return 0, false // halfway
	}

	retMantissa += retMantissa & 1
	retMantissa >>= 1
	if retMantissa>>53 > 0 {
		retMantissa >>= 1
		retExp2++
	}
	if retExp2-1 >= 0x7FF-1 {
		return 0, false // subnormal, infinite or NaN
	}
	retBits := retExp2<<52 | retMantissa&(1<<52-1)
	if neg {
		retBits |= 1 << 63
	}
	return math.Float64frombits(retBits), true
}
