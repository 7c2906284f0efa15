package pushnotify

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
	"unicode/utf16"
)

// encodeP12 writes a certificate and its key as a password-protected
// PKCS#12 file like the .p12 the macOS Keychain exports: the key in a
// shrouded key bag (pbeWithSHAAnd3-KeyTripleDES-CBC), the certificate in a
// cert bag, an HMAC-SHA1 over both. Go's x/crypto/pkcs12 only decodes, so
// the tests build the file from RFC 7292 themselves.
func encodeP12(t *testing.T, certDER []byte, key any, password string) []byte {
	t.Helper()
	var (
		oidData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
		oidKeyBag    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
		oidCertBag   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
		oidX509Cert  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
		oidPBE3DES   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
		oidSHA1      = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
		salt         = []byte("saltsalt")
		iterations   = 2048
		pass         = bmp(password)
		mustMarshal  = func(v any) []byte { b, err := asn1.Marshal(v); must(t, err); return b }
		explicitZero = func(der []byte) asn1.RawValue {
			return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
		}
		dataContentOf = func(der []byte) contentInfoW { return contentInfoW{oidData, explicitZero(mustMarshal(der))} }
	)

	// The key: PKCS#8, padded, encrypted with a key and IV derived from the password.
	plain, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	block, err := des.NewTripleDESCipher(pkcs12KDF(pass, salt, iterations, 1, 24))
	must(t, err)
	pad := block.BlockSize() - len(plain)%block.BlockSize()
	for range pad {
		plain = append(plain, byte(pad))
	}
	encrypted := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, pkcs12KDF(pass, salt, iterations, 2, 8)).CryptBlocks(encrypted, plain)
	keyBag := safeBagW{oidKeyBag, explicitZero(mustMarshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		Data      []byte
	}{
		pkix.AlgorithmIdentifier{Algorithm: oidPBE3DES, Parameters: asn1.RawValue{FullBytes: mustMarshal(struct {
			Salt       []byte
			Iterations int
		}{salt, iterations})}},
		encrypted,
	}))}

	certBag := safeBagW{oidCertBag, explicitZero(mustMarshal(struct {
		ID   asn1.ObjectIdentifier
		Cert asn1.RawValue
	}{oidX509Cert, explicitZero(mustMarshal(certDER))}))}

	authSafe := mustMarshal([]contentInfoW{
		dataContentOf(mustMarshal([]safeBagW{certBag})),
		dataContentOf(mustMarshal([]safeBagW{keyBag})),
	})
	mac := hmac.New(sha1.New, pkcs12KDF(pass, salt, iterations, 3, 20))
	mac.Write(authSafe)

	return mustMarshal(pfxW{
		Version:  3,
		AuthSafe: dataContentOf(authSafe),
		MacData: macDataW{
			Mac:        digestInfoW{pkix.AlgorithmIdentifier{Algorithm: oidSHA1, Parameters: asn1.NullRawValue}, mac.Sum(nil)},
			Salt:       salt,
			Iterations: iterations,
		},
	})
}

// The ASN.1 shapes of RFC 7292, for writing.
type pfxW struct {
	Version  int
	AuthSafe contentInfoW
	MacData  macDataW
}

type macDataW struct {
	Mac        digestInfoW
	Salt       []byte
	Iterations int
}

type digestInfoW struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

type contentInfoW struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue
}

type safeBagW struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

// bmp is a PKCS#12 password: UTF-16 big endian with two zero bytes after.
func bmp(s string) []byte {
	var out []byte
	for _, r := range utf16.Encode([]rune(s)) {
		out = append(out, byte(r>>8), byte(r))
	}
	return append(out, 0, 0)
}

// pkcs12KDF derives n bytes for purpose id (1 key, 2 IV, 3 MAC) from a
// password with SHA-1, as RFC 7292 appendix B.2 describes.
func pkcs12KDF(pass, salt []byte, iterations int, id byte, n int) []byte {
	const v = 64                    // SHA-1's block size
	fill := func(b []byte) []byte { // b repeated to a multiple of v bytes
		if len(b) == 0 {
			return nil
		}
		out := make([]byte, v*((len(b)+v-1)/v))
		for i := range out {
			out[i] = b[i%len(b)]
		}
		return out
	}
	d := make([]byte, v)
	for i := range d {
		d[i] = id
	}
	in := append(fill(salt), fill(pass)...)
	var out []byte
	for len(out) < n {
		h := sha1.Sum(append(append([]byte(nil), d...), in...))
		a := h[:]
		for range iterations - 1 {
			h = sha1.Sum(a)
			a = h[:]
		}
		out = append(out, a...)
		b := fill(a)
		for j := 0; j < len(in); j += v { // I_j = (I_j + B + 1) mod 2^(8v)
			carry := 1
			for k := v - 1; k >= 0; k-- {
				sum := int(in[j+k]) + int(b[k]) + carry
				in[j+k], carry = byte(sum), sum>>8
			}
		}
	}
	return out[:n]
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
