package io.unseen.convert;

import io.unseen.engine.io.TensorFormatException;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;

import static io.unseen.convert.Fixtures.convert;
import static io.unseen.convert.Fixtures.resource;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Finding the weights inside training checkpoints (fixtures: select_*.pt from make_converter_fixtures.py). */
class SourceTensorsTest {

    private static float[] load(SourceTensors s, String name) throws IOException {
        return s.entries().get(name).loader().load().data();
    }

    private static boolean noted(SourceTensors s, String fragment) {
        return s.notes().stream().anyMatch(n -> n.contains(fragment));
    }

    @Test
    void ddimListPrefersTheEmaStateAndStripsDataParallelPrefix() throws IOException {
        try (SourceTensors s = SourceTensors.open(convert("select_ddim.pth"), null)) {
            assertEquals("4", s.selected());
            assertEquals(List.of("conv_in.weight", "conv_in.bias"), List.copyOf(s.entries().keySet()));
            assertArrayEquals(new float[]{0, 2, 4, 6}, load(s, "conv_in.weight"));
            assertEquals("module.conv_in.weight", s.entries().get("conv_in.weight").fileName());
            assertTrue(noted(s, "using the EMA weights under '4'") && noted(s, "'0'"), s.notes().toString());
            assertTrue(noted(s, "stripped the DataParallel prefix"), s.notes().toString());
        }
    }

    @Test
    void ddimListWithoutEmaUsesTheModelStateAndIgnoresNonFloatTensors() throws IOException {
        try (SourceTensors s = SourceTensors.open(convert("select_ddim_no_ema.pth"), null)) {
            assertEquals("0", s.selected());
            assertArrayEquals(new float[]{0, 1, 2, 3}, load(s, "conv_in.weight"));
            assertTrue(noted(s, "ignored non-float tensor 'module.bn.num_batches_tracked'"), s.notes().toString());
        }
    }

    @Test
    void selectPicksAnyEntry() throws IOException {
        try (SourceTensors s = SourceTensors.open(convert("select_ddim.pth"), "0")) {
            assertArrayEquals(new float[]{0, 1, 2, 3}, load(s, "conv_in.weight"));
        }
        try (SourceTensors s = SourceTensors.open(convert("select_deep.pt"), "checkpoint.weights")) {
            assertArrayEquals(new float[]{0, 4, 8, 12}, load(s, "conv_in.weight"));
        }
    }

    @Test
    void nestedDictPrefersEmaModel() throws IOException {
        try (SourceTensors s = SourceTensors.open(convert("select_nested.pt"), null)) {
            assertEquals("ema_model", s.selected());
            assertArrayEquals(new float[]{0, 3, 6, 9}, load(s, "conv_in.weight"));
        }
        // 'model' also holds a string, so it is not a state_dict; --select says so
        TensorFormatException e = assertThrows(TensorFormatException.class,
                () -> SourceTensors.open(convert("select_nested.pt"), "model"));
        assertTrue(e.getMessage().contains("not a state_dict"), e.getMessage());
    }

    @Test
    void stateDictKeyIsFoundBesideOtherEntries() throws IOException {
        try (SourceTensors s = SourceTensors.open(resource("torch/nested_zip.pt"), null)) {
            assertEquals("ema", s.selected()); // {"step", "state_dict", "ema"}: EMA first
            assertArrayEquals(new float[]{0.5f, 0.5f, 0.5f, 0.5f}, load(s, "w"));
        }
        try (SourceTensors s = SourceTensors.open(resource("torch/nested_zip.pt"), "state_dict")) {
            assertArrayEquals(new float[]{1, 1, 1, 1}, load(s, "w"));
        }
    }

    @Test
    void unknownStructureAsksForSelect() {
        TensorFormatException e = assertThrows(TensorFormatException.class,
                () -> SourceTensors.open(convert("select_deep.pt"), null));
        assertTrue(e.getMessage().contains("select_deep.pt") && e.getMessage().contains("--select")
                && e.getMessage().contains("checkpoint"), e.getMessage());
        e = assertThrows(TensorFormatException.class, () -> SourceTensors.open(convert("select_deep.pt"),
                "checkpoint.nothing"));
        assertTrue(e.getMessage().contains("no entry 'nothing' in 'checkpoint'"), e.getMessage());
    }
}
