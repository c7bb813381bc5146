package io.probestream.contracts.safetensors;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class TensorInfoTest {

  @Test
  void elementsIsTheProductOfTheShape() {
    assertThat(new TensorInfo("s", DType.F32, new long[] {}, 0, 4).elements()).isEqualTo(1);
    assertThat(new TensorInfo("m", DType.F32, new long[] {2, 3, 4}, 0, 96).elements())
        .isEqualTo(24);
    assertThat(new TensorInfo("e", DType.F32, new long[] {5, 0, 3}, 0, 0).elements()).isZero();
  }

  @Test
  void rankAndDimReadTheShape() {
    TensorInfo t = new TensorInfo("x", DType.I64, new long[] {7, 2}, 8, 120);

    assertThat(t.rank()).isEqualTo(2);
    assertThat(t.dim(0)).isEqualTo(7);
    assertThat(t.dim(1)).isEqualTo(2);
  }

  @Test
  void theShapeIsCopiedInAndOut() {
    long[] shape = {2, 3};
    TensorInfo t = new TensorInfo("x", DType.F32, shape, 0, 24);

    shape[0] = 99;
    t.shape()[1] = 99;

    assertThat(t.shape()).containsExactly(2, 3);
  }

  @Test
  void dtypesHaveTheirByteWidthsAndKinds() {
    assertThat(DType.values()).containsExactly(DType.F32, DType.F64, DType.I64, DType.I32);
    assertThat(DType.F32.bytes()).isEqualTo(4);
    assertThat(DType.F64.bytes()).isEqualTo(8);
    assertThat(DType.I64.bytes()).isEqualTo(8);
    assertThat(DType.I32.bytes()).isEqualTo(4);
    assertThat(DType.F32.isFloat()).isTrue();
    assertThat(DType.F64.isFloat()).isTrue();
    assertThat(DType.I64.isFloat()).isFalse();
    assertThat(DType.I32.isFloat()).isFalse();
  }
}
