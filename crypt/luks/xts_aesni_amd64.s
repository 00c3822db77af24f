//go:build amd64 && !purego

#include "textflag.h"

// AES-XTS block loops with AES-NI. The caller computed the tweaks (tw,
// one 16-byte tweak per block) and the expanded round keys (xk, nr+1
// round keys of 16 bytes; for decryption in the equivalent inverse
// cipher's order). dst[i] = AES(src[i] ^ tw[i]) ^ tw[i], four blocks at a
// time so that the AES units stay busy.

// func xtsEncAESNI(xk *byte, nr int, dst, src, tw *byte, n int)
TEXT ·xtsEncAESNI(SB), NOSPLIT, $0-48
	MOVQ xk+0(FP), AX
	MOVQ nr+8(FP), CX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ tw+32(FP), DX
	MOVQ n+40(FP), BX
enc4:
	CMPQ BX, $4
	JB   enc1
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU 0(DX), X8
	MOVOU 16(DX), X9
	MOVOU 32(DX), X10
	MOVOU 48(DX), X11
	PXOR  X8, X0
	PXOR  X9, X1
	PXOR  X10, X2
	PXOR  X11, X3
	MOVOU 0(AX), X4
	PXOR  X4, X0
	PXOR  X4, X1
	PXOR  X4, X2
	PXOR  X4, X3
	MOVQ  AX, R8
	MOVQ  CX, R9
	DECQ  R9
enc4round:
	ADDQ   $16, R8
	MOVOU  0(R8), X4
	AESENC X4, X0
	AESENC X4, X1
	AESENC X4, X2
	AESENC X4, X3
	DECQ   R9
	JNZ    enc4round
	MOVOU      16(R8), X4
	AESENCLAST X4, X0
	AESENCLAST X4, X1
	AESENCLAST X4, X2
	AESENCLAST X4, X3
	PXOR  X8, X0
	PXOR  X9, X1
	PXOR  X10, X2
	PXOR  X11, X3
	MOVOU X0, 0(DI)
	MOVOU X1, 16(DI)
	MOVOU X2, 32(DI)
	MOVOU X3, 48(DI)
	ADDQ  $64, SI
	ADDQ  $64, DI
	ADDQ  $64, DX
	SUBQ  $4, BX
	JMP   enc4
enc1:
	TESTQ BX, BX
	JZ    encdone
	MOVOU 0(SI), X0
	MOVOU 0(DX), X8
	PXOR  X8, X0
	MOVOU 0(AX), X4
	PXOR  X4, X0
	MOVQ  AX, R8
	MOVQ  CX, R9
	DECQ  R9
enc1round:
	ADDQ   $16, R8
	MOVOU  0(R8), X4
	AESENC X4, X0
	DECQ   R9
	JNZ    enc1round
	MOVOU      16(R8), X4
	AESENCLAST X4, X0
	PXOR  X8, X0
	MOVOU X0, 0(DI)
	ADDQ  $16, SI
	ADDQ  $16, DI
	ADDQ  $16, DX
	DECQ  BX
	JMP   enc1
encdone:
	RET

// func xtsDecAESNI(xk *byte, nr int, dst, src, tw *byte, n int)
TEXT ·xtsDecAESNI(SB), NOSPLIT, $0-48
	MOVQ xk+0(FP), AX
	MOVQ nr+8(FP), CX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ tw+32(FP), DX
	MOVQ n+40(FP), BX
dec4:
	CMPQ BX, $4
	JB   dec1
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU 0(DX), X8
	MOVOU 16(DX), X9
	MOVOU 32(DX), X10
	MOVOU 48(DX), X11
	PXOR  X8, X0
	PXOR  X9, X1
	PXOR  X10, X2
	PXOR  X11, X3
	MOVOU 0(AX), X4
	PXOR  X4, X0
	PXOR  X4, X1
	PXOR  X4, X2
	PXOR  X4, X3
	MOVQ  AX, R8
	MOVQ  CX, R9
	DECQ  R9
dec4round:
	ADDQ   $16, R8
	MOVOU  0(R8), X4
	AESDEC X4, X0
	AESDEC X4, X1
	AESDEC X4, X2
	AESDEC X4, X3
	DECQ   R9
	JNZ    dec4round
	MOVOU      16(R8), X4
	AESDECLAST X4, X0
	AESDECLAST X4, X1
	AESDECLAST X4, X2
	AESDECLAST X4, X3
	PXOR  X8, X0
	PXOR  X9, X1
	PXOR  X10, X2
	PXOR  X11, X3
	MOVOU X0, 0(DI)
	MOVOU X1, 16(DI)
	MOVOU X2, 32(DI)
	MOVOU X3, 48(DI)
	ADDQ  $64, SI
	ADDQ  $64, DI
	ADDQ  $64, DX
	SUBQ  $4, BX
	JMP   dec4
dec1:
	TESTQ BX, BX
	JZ    decdone
	MOVOU 0(SI), X0
	MOVOU 0(DX), X8
	PXOR  X8, X0
	MOVOU 0(AX), X4
	PXOR  X4, X0
	MOVQ  AX, R8
	MOVQ  CX, R9
	DECQ  R9
dec1round:
	ADDQ   $16, R8
	MOVOU  0(R8), X4
	AESDEC X4, X0
	DECQ   R9
	JNZ    dec1round
	MOVOU      16(R8), X4
	AESDECLAST X4, X0
	PXOR  X8, X0
	MOVOU X0, 0(DI)
	ADDQ  $16, SI
	ADDQ  $16, DI
	ADDQ  $16, DX
	DECQ  BX
	JMP   dec1
decdone:
	RET

// func invMixColumnsAESNI(dst, src *byte)
TEXT ·invMixColumnsAESNI(SB), NOSPLIT, $0-16
	MOVQ   dst+0(FP), DI
	MOVQ   src+8(FP), SI
	MOVOU  0(SI), X0
	AESIMC X0, X1
	MOVOU  X1, 0(DI)
	RET
