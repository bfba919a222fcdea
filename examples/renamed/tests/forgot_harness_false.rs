//! Built only by the suite, to see main! refuse a target with libtest's harness.

vy::main!(renamed);
