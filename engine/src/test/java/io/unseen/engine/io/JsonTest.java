package io.unseen.engine.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class JsonTest {
    private static Object parse(String s) {
        return Json.parse(s, 1 << 20);
    }

    @Test
    void parsesEveryValueTypeIntoPlainJavaObjects() {
        Object v = parse(" {\"a\": [1, -2.5, true, false, null, \"x\"], \"b\": {}, \"c\": []}\n");
        Map<?, ?> m = assertInstanceOf(Map.class, v);
        assertEquals(List.of("a", "b", "c"), new ArrayList<>(m.keySet()));
        List<Object> a = new ArrayList<>();
        a.add(1L);
        a.add(-2.5);
        a.add(true);
        a.add(false);
        a.add(null);
        a.add("x");
        assertEquals(a, m.get("a"));
        assertEquals(Map.of(), m.get("b"));
        assertEquals(List.of(), m.get("c"));
    }

    @Test
    void keepsKeyOrderOfTheText() {
        Map<?, ?> m = (Map<?, ?>) parse("{\"z\":1,\"a\":2,\"m\":3,\"b\":4}");
        assertEquals(List.of("z", "a", "m", "b"), new ArrayList<>(m.keySet()));
    }

    @Test
    void integersAreLongsWhenTheyFitOtherwiseDoubles() {
        assertEquals(0L, parse("0"));
        assertEquals(0L, parse("-0"));
        assertEquals(Long.MAX_VALUE, parse("9223372036854775807"));
        assertEquals(Long.MIN_VALUE, parse("-9223372036854775808"));
        assertEquals(9223372036854775808.0, parse("9223372036854775808"));
        assertEquals(-1e20, parse("-100000000000000000000"));
        assertEquals(1.0, parse("1.0"));
        assertEquals(1e10, parse("1e10"));
        assertEquals(1.5e-7, parse("15E-8"));
        assertEquals(120.0, parse("1.2e+2"));
        assertEquals(0.0, parse("1e-400"));
    }

    @Test
    void decodesAllStringEscapesAndSurrogatePairs() {
        assertEquals("\"\\/\b\f\n\r\t", parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""));
        assertEquals("A\u00e9\u4e2d", parse("\"\\u0041\\u00E9\\u4e2d\""));
        assertEquals("\uD83D\uDE00", parse("\"\\ud83d\\ude00\""));
        assertEquals("raw \uD83D\uDE00 \u00fc", parse("\"raw \uD83D\uDE00 \u00fc\""));
        assertEquals("\u0000\u001f", parse("\"\\u0000\\u001F\""));
    }

    @ParameterizedTest(name = "[{index}] {2}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
        "``                      | 0 | end of input",
        "`   `                   | 3 | end of input",
        "`{\"a\":1}x`            | 7 | after the JSON value",
        "`[1] [2]`               | 4 | after the JSON value",
        "`{\"a\":1,\"a\":2}`     | 7 | duplicate key \"a\"",
        "`{\"a\":1,}`            | 7 | expected a string key",
        "`[1,]`                  | 3 | expected a value",
        "`[1 2]`                 | 3 | expected ',' or ']'",
        "`{\"a\" 1}`             | 5 | expected ':'",
        "`{\"a\":1 \"b\":2}`     | 7 | expected ',' or '}'",
        "`{a:1}`                 | 1 | expected a string key",
        "`['a']`                 | 1 | expected a value",
        "`01`                    | 0 | leading zeros",
        "`-01`                   | 0 | leading zeros",
        "`1.`                    | 2 | fraction",
        "`.5`                    | 0 | expected a value",
        "`+1`                    | 0 | expected a value",
        "`1e`                    | 2 | exponent",
        "`-`                     | 1 | expected a digit",
        "`1e999`                 | 0 | too large",
        "`-1e400`                | 0 | too large",
        "`NaN`                   | 0 | expected a value",
        "`Infinity`              | 0 | expected a value",
        "`tru`                   | 0 | expected 'true'",
        "`nul`                   | 0 | expected 'null'",
        "`\"abc`                 | 0 | unterminated string",
        "`\"a\\x\"`              | 2 | invalid escape",
        "`\"\\u12\"`             | 1 | 4 hex digits",
        "`\"\\u12g4\"`           | 5 | 4 hex digits",
        "`\"\\ud83d\"`           | 1 | low surrogate",
        "`\"\\ud83d\\u0041\"`    | 1 | low surrogate",
        "`\"\\ude00\"`           | 1 | without a preceding high surrogate",
        "`[1] // comment`        | 4 | after the JSON value",
    })
    void rejectsTextOutsideTheGrammarWithTheOffset(String text, int offset, String problem) {
        JsonException e = assertThrows(JsonException.class, () -> parse(text));
        assertTrue(e.problem().contains(problem), e.getMessage());
        assertEquals(offset, e.offset(), e.getMessage());
        assertTrue(e.getMessage().contains("offset " + offset), e.getMessage());
    }

    @Test
    void rejectsRawControlCharactersAndLoneSurrogatesInStrings() {
        JsonException e = assertThrows(JsonException.class, () -> parse("\"a\nb\""));
        assertTrue(e.problem().contains("control character U+000A"), e.getMessage());
        assertEquals(2, e.offset());
        e = assertThrows(JsonException.class, () -> parse("\"a\uD800b\""));
        assertTrue(e.problem().contains("lone surrogate"), e.getMessage());
        e = assertThrows(JsonException.class, () -> parse("\"\uDC00\""));
        assertTrue(e.problem().contains("lone surrogate"), e.getMessage());
        e = assertThrows(JsonException.class, () -> parse("{\"a\":1}\u0000"));
        assertEquals(7, e.offset());
    }

    @Test
    void rejectsWhitespaceOutsideJsonsFour() {
        assertThrows(JsonException.class, () -> parse("\u00a01"));
        assertThrows(JsonException.class, () -> parse("\ufeff{}"));
        assertThrows(JsonException.class, () -> parse("[1,\u000b2]"));
    }

    @Test
    void nestingIsLimitedSoHostileInputCannotOverflowTheStack() {
        assertEquals(64, depthOf(parse("[".repeat(64) + "]".repeat(64))));
        JsonException e = assertThrows(JsonException.class, () -> parse("[".repeat(65) + "]".repeat(65)));
        assertTrue(e.problem().contains("nesting deeper than 64"), e.getMessage());
        assertEquals(64, e.offset());

        // A megabyte of open brackets or objects is refused at the limit, not after a StackOverflowError.
        String hostile = "[".repeat(1 << 20);
        e = assertThrows(JsonException.class, () -> Json.parse(hostile, 1 << 20));
        assertEquals(64, e.offset());
        String objects = "{\"a\":".repeat(200_000);
        e = assertThrows(JsonException.class, () -> Json.parse(objects, 1 << 20));
        assertTrue(e.problem().contains("nesting"), e.getMessage());

        assertEquals(3, depthOf(Json.parse("[[[1]]]", 100, 3)));
        assertThrows(JsonException.class, () -> Json.parse("[[[[1]]]]", 100, 3));
    }

    private static int depthOf(Object v) {
        int d = 0;
        while (v instanceof List) {
            d++;
            List<?> l = (List<?>) v;
            v = l.isEmpty() ? null : l.get(0);
        }
        return d;
    }

    @Test
    void inputLongerThanTheCallersLimitIsRefusedBeforeParsing() {
        assertEquals(List.of(1L), Json.parse("[1]", 3));
        JsonException e = assertThrows(JsonException.class, () -> Json.parse("[1] ", 3));
        assertTrue(e.problem().contains("4 characters, more than the limit of 3"), e.getMessage());
    }

    @Test
    void writesCompactJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", "unet");
        m.put("ch_mult", List.of(1, 2, 2));
        m.put("dropout", 0.1);
        m.put("steps", 1000L);
        m.put("ema", true);
        m.put("note", null);
        m.put("nested", Map.of("x", List.of()));
        assertEquals("{\"name\":\"unet\",\"ch_mult\":[1,2,2],\"dropout\":0.1,\"steps\":1000,\"ema\":true,"
                + "\"note\":null,\"nested\":{\"x\":[]}}", Json.write(m));
    }

    @Test
    void writerEscapesQuotesBackslashesAndControlCharacters() {
        assertEquals("\"q\\\"b\\\\n\\nr\\rt\\tb\\bf\\f\\u0000\\u001f\u007f\u00e9\uD83D\uDE00/\"",
                Json.write("q\"b\\n\nr\rt\tb\bf\f\u0000\u001f\u007f\u00e9\uD83D\uDE00/"));
        for (char c = 0; c < 0x20; c++) {
            String s = "<" + c + ">";
            String written = Json.write(s);
            for (int i = 0; i < written.length(); i++) {
                assertTrue(written.charAt(i) >= 0x20, "raw control character in " + written);
            }
            assertEquals(s, parse(written));
        }
    }

    @Test
    void writerRefusesValuesJsonCannotHold() {
        assertThrows(IllegalArgumentException.class, () -> Json.write(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> Json.write(List.of(Float.POSITIVE_INFINITY)));
        assertThrows(IllegalArgumentException.class, () -> Json.write(Map.of(1, "x")));
        assertThrows(IllegalArgumentException.class, () -> Json.write("\uD800"));
        assertThrows(IllegalArgumentException.class, () -> Json.write(new Object()));
        List<Object> cycle = new ArrayList<>();
        cycle.add(cycle);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.write(cycle));
        assertTrue(e.getMessage().contains("cycle"), e.getMessage());
    }

    @Test
    void randomTreesSurviveWriteThenParse() {
        Random rnd = new Random(1234);
        for (int i = 0; i < 300; i++) {
            Object tree = randomValue(rnd, 0);
            String text = Json.write(tree);
            assertEquals(tree, parse(text), text);
            assertEquals(text, Json.write(parse(text)));
        }
    }

    @Test
    void parseResultsCanBeWrittenBackUnchanged() {
        String text = "{\"a\":[1,-2.5,1.0E10,true,null],\"s\":\"\\\"\\\\\\n\\u0001\",\"o\":{\"k\":{}}}";
        assertEquals(text, Json.write(parse(text)));
        assertNull(parse("null"));
    }

    private static Object randomValue(Random rnd, int depth) {
        int kind = rnd.nextInt(depth < 4 ? 8 : 6);
        switch (kind) {
            case 0:
                return null;
            case 1:
                return rnd.nextBoolean();
            case 2:
                return rnd.nextLong() >> rnd.nextInt(64);
            case 3: {
                double d = Double.longBitsToDouble(rnd.nextLong());
                return Double.isFinite(d) ? d : rnd.nextGaussian();
            }
            case 4:
            case 5:
                return randomString(rnd);
            case 6: {
                List<Object> l = new ArrayList<>();
                for (int i = rnd.nextInt(4); i > 0; i--) {
                    l.add(randomValue(rnd, depth + 1));
                }
                return l;
            }
            default: {
                Map<String, Object> m = new LinkedHashMap<>();
                for (int i = rnd.nextInt(4); i > 0; i--) {
                    m.put(randomString(rnd), randomValue(rnd, depth + 1));
                }
                return m;
            }
        }
    }

    private static String randomString(Random rnd) {
        StringBuilder sb = new StringBuilder();
        for (int i = rnd.nextInt(8); i > 0; i--) {
            int cp;
            do {
                cp = rnd.nextBoolean() ? rnd.nextInt(0x80) : rnd.nextInt(0x110000);
            } while (Character.isSurrogate((char) cp) && cp < 0x10000);
            sb.appendCodePoint(cp);
        }
        return sb.toString();
    }

    @Test
    void exceptionIsAnIllegalArgumentException() {
        RuntimeException e = assertThrows(RuntimeException.class, () -> parse("[}"));
        assertInstanceOf(IllegalArgumentException.class, e);
        assertEquals(Arrays.asList(1L, null), parse("[1,null]"));
    }
}
