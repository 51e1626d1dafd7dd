package carbonblack

import "hash/crc32"

// The gzip trailer carries the CRC-32 of the whole body. The feed's pieces
// keep their own CRCs, and crc32Combine joins them in the time of a few
// multiplications, without reading the body again (the method of zlib's
// crc32_combine: multiplying by x^(8·len) modulo the polynomial, in the
// reflected bit order of CRC-32/IEEE).

// crc32Poly is the IEEE polynomial, reflected.
const crc32Poly = 0xedb88320

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// multModP multiplies a and b modulo the polynomial.
func multModP(a, b uint32) uint32 {
	m, p := uint32(1)<<31, uint32(0)
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				return p
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = b>>1 ^ crc32Poly
		} else {
			b >>= 1
		}
	}
}

// x2nTable[k] is x^(2^k) modulo the polynomial.
var x2nTable = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	t[0] = p
	for n := 1; n < 32; n++ {
		p = multModP(p, p)
		t[n] = p
	}
	return t
}()

// crc32Shift is x^(8·n) modulo the polynomial: what crc32Combine needs of
// a piece of n bytes.
func crc32Shift(n int64) uint32 {
	p, k := uint32(1)<<31, 3 // x^0; 8 = 2^3
	for n > 0 {
		if n&1 != 0 {
			p = multModP(x2nTable[k&31], p)
		}
		n >>= 1
		k++
	}
	return p
}

// crc32Combine is the CRC-32 of A followed by B, from crcA, crcB and
// crc32Shift(len(B)).
func crc32Combine(crcA, crcB, shiftB uint32) uint32 {
	return multModP(shiftB, crcA) ^ crcB
}
