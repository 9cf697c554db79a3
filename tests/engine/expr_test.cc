#include "engine/expr.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/tags.h"

namespace dagd::engine {
namespace {

using nlohmann::json;

json Eval(std::string_view expression, const TagScope& scope = {}) {
  absl::StatusOr<json> value = EvaluateExpression(expression, scope);
  EXPECT_TRUE(value.ok()) << expression << ": " << value.status();
  return value.ok() ? *value : json("<error>");
}

json EvalIn(std::string_view expression, const json& environment) {
  absl::StatusOr<json> value = EvaluateExpressionIn(expression, environment);
  EXPECT_TRUE(value.ok()) << expression << ": " << value.status();
  return value.ok() ? *value : json("<error>");
}

// The value as it would be substituted into a string.
std::string Text(std::string_view expression, const TagScope& scope = {}) {
  return ExpressionValueText(Eval(expression, scope));
}

std::string Error(std::string_view expression, const TagScope& scope = {}) {
  absl::StatusOr<json> value = EvaluateExpression(expression, scope);
  EXPECT_FALSE(value.ok()) << expression << " gave " << (value.ok() ? value->dump() : "");
  if (value.ok()) return "";
  EXPECT_EQ(value.status().code(), absl::StatusCode::kInvalidArgument);
  const absl::string_view message = value.status().message();
  return {message.data(), message.size()};
}

bool IsInt(const json& value) { return value.is_number_integer(); }
bool IsFloat(const json& value) { return value.is_number_float(); }

TEST(ExprTest, Literals) {
  EXPECT_EQ(Eval("42"), 42);
  EXPECT_TRUE(IsInt(Eval("42")));
  EXPECT_EQ(Eval("0x2A"), 42);
  EXPECT_EQ(Eval("0o52"), 42);
  EXPECT_EQ(Eval("0b101010"), 42);
  EXPECT_EQ(Eval("1_000"), 1000);
  EXPECT_EQ(Eval("0.5"), 0.5);
  EXPECT_EQ(Eval(".5"), 0.5);
  EXPECT_EQ(Eval("1e3"), 1000.0);
  EXPECT_TRUE(IsFloat(Eval("1e3")));
  EXPECT_EQ(Eval("'single'"), "single");
  EXPECT_EQ(Eval("\"double\""), "double");
  EXPECT_EQ(Eval(R"('a\nb\t\'c\' \"d\"')"), "a\nb\t'c' \"d\"");
  EXPECT_EQ(Eval(R"("\u00e9\x41\101")"),
            "\xc3\xa9"
            "AA");
  EXPECT_EQ(Eval(R"(`raw\n`)"), "raw\\n");
  EXPECT_EQ(Eval("true"), true);
  EXPECT_EQ(Eval("false"), false);
  EXPECT_TRUE(Eval("nil").is_null());
  EXPECT_EQ(Eval("[1, 'a', [2], ]"), json::parse(R"([1, "a", [2]])"));
  EXPECT_EQ(Eval("[]"), json::array());
  EXPECT_EQ(Eval("{a: 1, 'b-c': 2, 3: 'x', ('k' + 'ey'): true}"),
            json::parse(R"({"a": 1, "b-c": 2, "3": "x", "key": true})"));
  EXPECT_EQ(Eval("1 /* a comment */ + // another\n 1"), 2);
}

TEST(ExprTest, Arithmetic) {
  EXPECT_EQ(Eval("1 + 2 * 3"), 7);
  EXPECT_EQ(Eval("(1 + 2) * 3"), 9);
  EXPECT_EQ(Eval("10 - 3 - 2"), 5);
  EXPECT_EQ(Eval("7 / 2"), 3.5);
  // Division always gives a float in expr, even when it comes out whole.
  EXPECT_EQ(Eval("6 / 2"), 3.0);
  EXPECT_TRUE(IsFloat(Eval("6 / 2")));
  EXPECT_EQ(Eval("7 % 3"), 1);
  EXPECT_EQ(Eval("-7 % 3"), -1);
  EXPECT_EQ(Eval("2 ** 10"), 1024.0);
  EXPECT_TRUE(IsFloat(Eval("2 ** 10")));
  EXPECT_EQ(Eval("2 ^ 3 ^ 2"), 512.0);  // right-associative
  EXPECT_EQ(Eval("-2 ** 2"), -4.0);     // unary minus binds looser than **
  EXPECT_EQ(Eval("1 + 2.5"), 3.5);
  EXPECT_TRUE(IsInt(Eval("2 * 3")));
  EXPECT_TRUE(IsFloat(Eval("2 * 3.0")));
  EXPECT_EQ(Eval("-(3)"), -3);
  EXPECT_EQ(Eval("+3"), 3);
  EXPECT_EQ(Eval("'a' + 'b'"), "ab");
  EXPECT_EQ(Eval("9223372036854775807 + 1"), INT64_MIN);  // Go's ints wrap
  EXPECT_EQ(Eval("1 / 0"), std::numeric_limits<double>::infinity());
}

TEST(ExprTest, ComparisonsAndLogic) {
  EXPECT_EQ(Eval("1 < 2"), true);
  EXPECT_EQ(Eval("2 <= 2"), true);
  EXPECT_EQ(Eval("2.5 > 2"), true);
  EXPECT_EQ(Eval("'a' < 'b'"), true);
  EXPECT_EQ(Eval("1 == 1.0"), true);
  EXPECT_EQ(Eval("'1' == 1"), false);  // no conversion: '1' is a string
  EXPECT_EQ(Eval("nil == nil"), true);
  EXPECT_EQ(Eval("[1, {a: 'x'}] == [1, {a: 'x'}]"), true);
  EXPECT_EQ(Eval("1 != 2"), true);
  EXPECT_EQ(Eval("1 < 2 < 3"), true);
  EXPECT_EQ(Eval("3 > 2 > 2"), false);
  EXPECT_EQ(Eval("true && false"), false);
  EXPECT_EQ(Eval("true and not false"), true);
  EXPECT_EQ(Eval("!true || true"), true);
  EXPECT_EQ(Eval("1 < 2 && 2 < 3 || false"), true);
  // && and || short-circuit: the right side is not evaluated.
  EXPECT_EQ(Eval("false && undefined_name"), false);
  EXPECT_EQ(Eval("true || undefined_name"), true);
}

TEST(ExprTest, MembershipAndStrings) {
  EXPECT_EQ(Eval("2 in [1, 2, 3]"), true);
  EXPECT_EQ(Eval("2.0 in [1, 2, 3]"), true);
  EXPECT_EQ(Eval("'a' in {a: 1}"), true);
  EXPECT_EQ(Eval("'z' not in ['a']"), true);
  EXPECT_EQ(Eval("'x' in nil"), false);
  EXPECT_EQ(Eval("'hello' contains 'ell'"), true);
  EXPECT_EQ(Eval("'hello' not contains 'z'"), true);
  EXPECT_EQ(Eval("'hello' startsWith 'he'"), true);
  EXPECT_EQ(Eval("'hello' endsWith 'lo'"), true);
  EXPECT_EQ(Eval("'abc' matches '^a.c$'"), true);
  EXPECT_EQ(Eval("'xabcx' matches 'b'"), true);  // a search, not a full match
  EXPECT_EQ(Eval("'ABC' matches '(?i)abc'"), true);
  EXPECT_EQ(Eval("'x' not matches 'y'"), true);
  EXPECT_EQ(Eval("1..3"), json::parse("[1, 2, 3]"));
  EXPECT_EQ(Eval("3..1"), json::array());
}

TEST(ExprTest, Conditionals) {
  EXPECT_EQ(Eval("1 == 1 ? 'y' : 'n'"), "y");
  EXPECT_EQ(Eval("false ? 1 : true ? 2 : 3"), 2);
  EXPECT_EQ(Eval("false ? 1 : false ? 2 : 3"), 3);
  EXPECT_EQ(Eval("nil ?? 'd'"), "d");
  EXPECT_EQ(Eval("'v' ?? 'd'"), "v");
  EXPECT_EQ(Eval("'' ?? 'd'"), "");  // only nil falls back, not emptiness
  EXPECT_EQ(Eval("nil ?? nil ?? 3"), 3);
  EXPECT_EQ(Eval("1 + (nil ?? 2)"), 3);
}

TEST(ExprTest, EnvironmentExpandsOnDots) {
  const TagScope scope = {{"a", "1"},
                          {"a.b", "2"},
                          {"c.d.e", "3"},
                          {"tasks.A.outputs.parameters", R"([{"x":"1"}])"},
                          {"tasks.A.outputs.parameters.x", "[\"1\"]"}};
  EXPECT_EQ(ExpressionEnvironment(scope), json::parse(R"({
    "a": {"b": "2"},
    "c": {"d": {"e": "3"}},
    "tasks": {"A": {"outputs": {"parameters": {"x": "[\"1\"]"}}}}
  })"));
}

TEST(ExprTest, Members) {
  const TagScope scope = {{"inputs.parameters.foo", "3"},
                          {"inputs.parameters.a-b", "x"},
                          {"steps.flip-coin.outputs.result", "heads"}};
  EXPECT_EQ(Eval("inputs.parameters.foo", scope), "3");  // scope values stay strings
  EXPECT_EQ(Eval("inputs.parameters['a-b']", scope), "x");
  EXPECT_EQ(Eval("inputs.parameters[\"a-b\"]", scope), "x");
  EXPECT_EQ(Eval("steps['flip-coin'].outputs.result", scope), "heads");
  EXPECT_TRUE(Eval("inputs.parameters.missing", scope).is_null());
  EXPECT_TRUE(Eval("inputs.nothing?.x", scope).is_null());
  EXPECT_TRUE(Eval("inputs?.nothing?.x.y.z", scope).is_null());  // ?. ends the whole chain
  EXPECT_TRUE(Eval("inputs.nothing?.['x']", scope).is_null());
  EXPECT_EQ(Eval("$env.inputs.parameters.foo", scope), "3");
  EXPECT_EQ(Eval("'foo' in inputs.parameters", scope), true);
  EXPECT_EQ(Eval("{a: {b: 1}}.a.b"), 1);
  EXPECT_EQ(Eval("[1, 2, 3][0]"), 1);
  EXPECT_EQ(Eval("[1, 2, 3][-1]"), 3);
  EXPECT_EQ(Eval("[1, 2, 3][1:]"), json::parse("[2, 3]"));
  EXPECT_EQ(Eval("[1, 2, 3][:2]"), json::parse("[1, 2]"));
  EXPECT_EQ(Eval("[1, 2, 3][:]"), json::parse("[1, 2, 3]"));
  EXPECT_EQ(Eval("[1, 2, 3][1:-1]"), json::parse("[2]"));
  EXPECT_EQ(Eval("[1, 2, 3][5:9]"), json::array());
  EXPECT_EQ(Eval("'hello'[1:3]"), "el");
}

TEST(ExprTest, NilCoalescingReadsTheLeftSideLeniently) {
  constexpr std::string_view kFallback = "tasks.producer.outputs.parameters.msg ?? 'expr-fallback'";
  // Nothing of the producer in scope (it never ran), or only its status.
  EXPECT_EQ(Eval(kFallback), "expr-fallback");
  EXPECT_EQ(Eval(kFallback, {{"tasks.producer.status", "Skipped"}}), "expr-fallback");
  EXPECT_EQ(Eval(kFallback, {{"tasks.producer.outputs.parameters.msg", "real"}}), "real");
  // A real empty output is not absent.
  EXPECT_EQ(Eval(kFallback, {{"tasks.producer.outputs.parameters.msg", ""}}), "");
  EXPECT_EQ(Eval("[1][5] ?? 2"), 2);
  EXPECT_EQ(Eval("missing.deep['x'][0] ?? 'd'"), "d");
  // Only the left side of ?? is lenient.
  EXPECT_NE(Error("missing.x").find("unknown name missing"), std::string::npos);
}

TEST(ExprTest, Builtins) {
  EXPECT_EQ(Eval("len('abc')"), 3);
  EXPECT_EQ(Eval("len([1, 2])"), 2);
  EXPECT_EQ(Eval("len({a: 1})"), 1);
  EXPECT_EQ(Eval("abs(-3)"), 3);
  EXPECT_EQ(Eval("abs(-2.5)"), 2.5);
  EXPECT_EQ(Eval("int('42')"), 42);
  EXPECT_EQ(Eval("int(3.9)"), 3);
  EXPECT_EQ(Eval("int(-3.9)"), -3);
  EXPECT_EQ(Eval("float('1.5')"), 1.5);
  EXPECT_TRUE(IsFloat(Eval("float(2)")));
  EXPECT_EQ(Eval("string(1)"), "1");
  EXPECT_EQ(Eval("string(1.5)"), "1.5");
  EXPECT_EQ(Eval("string(1000000.0)"), "1e+06");  // Go's %v
  EXPECT_EQ(Eval("string([1, 'a', nil])"), "[1 a <nil>]");
  EXPECT_EQ(Eval("string({b: 2, a: 1})"), "map[a:1 b:2]");
  EXPECT_EQ(Eval("upper('ab')"), "AB");
  EXPECT_EQ(Eval("lower('AB')"), "ab");
  EXPECT_EQ(Eval("trim('  x \\n')"), "x");
  EXPECT_EQ(Eval("trim('__x__', '_')"), "x");
  EXPECT_EQ(Eval("trimPrefix('HelloWorld', 'Hello')"), "World");
  EXPECT_EQ(Eval("trimSuffix('HelloWorld', 'World')"), "Hello");
  EXPECT_EQ(Eval("split('a,b,c', ',')"), json::parse(R"(["a", "b", "c"])"));
  EXPECT_EQ(Eval("split('a,b,c', ',', 2)"), json::parse(R"(["a", "b,c"])"));
  EXPECT_EQ(Eval("split('ab', '')"), json::parse(R"(["a", "b"])"));
  EXPECT_EQ(Eval("join(['a', 'b'], '-')"), "a-b");
  EXPECT_EQ(Eval("join(['a', 'b'])"), "ab");
  EXPECT_EQ(Eval("replace('foo bar', 'bar', 'BAR')"), "foo BAR");
  EXPECT_EQ(Eval("repeat('Hi', 3)"), "HiHiHi");
  EXPECT_EQ(Eval("indexOf('apple pie', 'pie')"), 6);
  EXPECT_EQ(Eval("lastIndexOf('apple pie apple', 'apple')"), 10);
  EXPECT_EQ(Eval("hasPrefix('HelloWorld', 'Hello')"), true);
  EXPECT_EQ(Eval("hasSuffix('HelloWorld', 'World')"), true);
  EXPECT_EQ(Eval("max(1, 2.5)"), 2.5);
  EXPECT_EQ(Eval("min([3, 1, 2])"), 1);
  EXPECT_EQ(Eval("ceil(1.5)"), 2.0);
  EXPECT_EQ(Eval("floor(-1.5)"), -2.0);
  EXPECT_EQ(Eval("round(2.5)"), 3.0);
  EXPECT_EQ(Eval("toJSON({name: 'John'})"), "{\n  \"name\": \"John\"\n}");
  EXPECT_EQ(Eval("fromJSON('{\"name\": \"John\"}')"), json::parse(R"({"name": "John"})"));
  EXPECT_TRUE(IsFloat(Eval("fromJSON('[1]')[0]")));  // Go's encoding/json: numbers are floats
  EXPECT_EQ(Eval("toBase64('Hello World')"), "SGVsbG8gV29ybGQ=");
  EXPECT_EQ(Eval("fromBase64('SGVsbG8gV29ybGQ=')"), "Hello World");
  EXPECT_EQ(Eval("keys({b: 1, a: 2})"), json::parse(R"(["a", "b"])"));
  EXPECT_EQ(Eval("values({b: 1, a: 2})"), json::parse("[2, 1]"));
  EXPECT_EQ(Eval("first([1, 2])"), 1);
  EXPECT_EQ(Eval("last([1, 2])"), 2);
  EXPECT_TRUE(Eval("first([])").is_null());
  EXPECT_EQ(Eval("get([1, 2, 3], 1)"), 2);
  EXPECT_TRUE(Eval("get([1, 2, 3], 7)").is_null());
  EXPECT_EQ(Eval("get({name: 'John'}, 'name')"), "John");
  EXPECT_EQ(Eval("type(42)"), "int");
  EXPECT_EQ(Eval("type('hello')"), "string");
  EXPECT_EQ(Eval("type(1.5)"), "float");
  EXPECT_EQ(Eval("type(nil)"), "nil");
  EXPECT_EQ(Eval("reverse([1, 2, 3])"), json::parse("[3, 2, 1]"));
  EXPECT_EQ(Eval("take([1, 2, 3], 2)"), json::parse("[1, 2]"));
  EXPECT_EQ(Eval("concat([1], [2, 3])"), json::parse("[1, 2, 3]"));
}

TEST(ExprTest, Predicates) {
  EXPECT_EQ(Eval("filter([1, 2, 3], {# > 1})"), json::parse("[2, 3]"));
  EXPECT_EQ(Eval("filter([1, 2, 3], # > 1)"), json::parse("[2, 3]"));  // braces are optional
  EXPECT_EQ(Eval("map([1, 2, 3], {# * 2})"), json::parse("[2, 4, 6]"));
  EXPECT_EQ(Eval("map([{n: 'a'}, {n: 'b'}], {.n})"), json::parse(R"(["a", "b"])"));
  EXPECT_EQ(Eval("map([{n: 'a'}], {#.n + 'x'})"), json::parse(R"(["ax"])"));
  EXPECT_EQ(Eval("map([5, 6], {#index})"), json::parse("[0, 1]"));
  EXPECT_EQ(Eval("all([1, 2], {# > 0})"), true);
  EXPECT_EQ(Eval("all([], {# > 0})"), true);
  EXPECT_EQ(Eval("any([1, 2], {# > 1})"), true);
  EXPECT_EQ(Eval("none([1, 2], {# > 2})"), true);
  EXPECT_EQ(Eval("one([1, 2], {# > 1})"), true);
  EXPECT_EQ(Eval("count([1, 2, 3], # > 1)"), 2);
  EXPECT_EQ(Eval("find([1, 2, 3, 4], # > 2)"), 3);
  EXPECT_TRUE(Eval("find([1], # > 2)").is_null());
  EXPECT_EQ(Eval("findIndex([1, 2, 3, 4], # > 2)"), 2);
  EXPECT_EQ(Eval("findLast([1, 2, 3, 4], # > 2)"), 4);
  EXPECT_EQ(Eval("findLastIndex([1, 2, 3, 4], # > 2)"), 3);
  EXPECT_EQ(Eval("sum([1, 2, 3])"), 6);
  EXPECT_EQ(Eval("sum([1, 2.5])"), 3.5);
  EXPECT_EQ(Eval("sum([{v: 1}, {v: 2}], .v)"), 3);
  EXPECT_EQ(Eval("reduce(1..4, #acc + #)"), 10);
  EXPECT_EQ(Eval("reduce(1..4, #acc + #, 10)"), 20);
  EXPECT_EQ(Eval("filter(0..9, {# % 2 == 0})"), json::parse("[0, 2, 4, 6, 8]"));
  // Nested predicates: # is the innermost element.
  EXPECT_EQ(Eval("map([[1, 2], [3]], {len(filter(#, {# > 1}))})"), json::parse("[1, 1]"));
  // The pipe passes its left side as the first argument.
  EXPECT_EQ(Eval("[1, 2, 3] | filter(# > 1) | map(# * 10)"), json::parse("[20, 30]"));
  EXPECT_EQ(Eval("'a,b' | split(',')"), json::parse(R"(["a", "b"])"));
  EXPECT_EQ(Eval("map(filter([{a: 1}, {a: 5}], .a > 2), .a)"), json::parse("[5]"));
}

TEST(ExprTest, ArgoFunctions) {
  const TagScope scope = {{"inputs.parameters.my-int-param", "21"},
                          {"inputs.parameters.my-float-param", "1.5"},
                          {"inputs.parameters.my-string-param", "  padded  "},
                          {"inputs.parameters.json", R"({"some": {"path": "found"}})"}};
  EXPECT_EQ(Eval("asInt(inputs.parameters['my-int-param']) * 2", scope), 42);
  EXPECT_EQ(Eval("asFloat(inputs.parameters['my-float-param'])", scope), 1.5);
  EXPECT_EQ(Eval("toJson([1, 2])"), "[1,2]");
  EXPECT_EQ(Eval("toJson({b: 'x<y', a: 1.0})"), R"({"a":1,"b":"x\u003cy"})");  // json.Marshal
  EXPECT_EQ(Eval("toJson('hello')"), "\"hello\"");
  EXPECT_EQ(Eval("jsonpath(inputs.parameters.json, '$.some.path')", scope), "found");
  EXPECT_EQ(Eval("sprig.trim(inputs.parameters['my-string-param'])", scope), "padded");
  EXPECT_EQ(Text("[1, 2]"), "[1,2]");
  EXPECT_EQ(Text("filter([1, 2], { # > 1})"), "[2]");
  EXPECT_EQ(Text("map([1, 2], { # * 2 })"), "[2,4]");
}

TEST(ExprTest, Sprig) {
  EXPECT_EQ(Eval("sprig.upper('ab')"), "AB");
  EXPECT_EQ(Eval("sprig.lower('AB')"), "ab");
  EXPECT_EQ(Eval("sprig.toString(12)"), "12");
  EXPECT_EQ(Eval("sprig.toString('x')"), "x");
  EXPECT_EQ(Eval("sprig.int('42')"), 42);
  EXPECT_EQ(Eval("sprig.int('3.0')"), 3);
  EXPECT_EQ(Eval("sprig.int('nope')"), 0);  // sprig does not fail; it gives 0
  EXPECT_EQ(Eval("sprig.int(4.7)"), 4);
  EXPECT_EQ(Eval("sprig.float64('2.5')"), 2.5);
  EXPECT_EQ(Eval("sprig.add(1, '2', 3.9)"), 6);
  EXPECT_EQ(Eval("sprig.add1(1)"), 2);
  EXPECT_EQ(Eval("sprig.sub(5, 2)"), 3);
  EXPECT_EQ(Eval("sprig.mul(2, 3, 4)"), 24);
  EXPECT_EQ(Eval("sprig.div(7, 2)"), 3);
  EXPECT_EQ(Eval("sprig.mod(7, 2)"), 1);
  EXPECT_EQ(Eval("sprig.max(1, 5, 3)"), 5);
  EXPECT_EQ(Eval("sprig.min(4, 2, 3)"), 2);
  EXPECT_EQ(Eval("sprig.empty('')"), true);
  EXPECT_EQ(Eval("sprig.empty(0)"), true);
  EXPECT_EQ(Eval("sprig.empty([])"), true);
  EXPECT_EQ(Eval("sprig.empty('x')"), false);
  EXPECT_EQ(Eval("sprig.default('fallback', '')"), "fallback");
  EXPECT_EQ(Eval("sprig.default('fallback', 'given')"), "given");
  EXPECT_EQ(Eval("sprig.default('fallback')"), "fallback");
  EXPECT_EQ(Eval("sprig.coalesce('', nil, 'c')"), "c");
  EXPECT_EQ(Eval("sprig.ternary('yes', 'no', 1 > 2)"), "no");
  EXPECT_EQ(Eval("sprig.trimAll('$', '$5.00$')"), "5.00");
  EXPECT_EQ(Eval("sprig.trimPrefix('-', '-x')"), "x");
  EXPECT_EQ(Eval("sprig.contains('cat', 'catch')"), true);
  EXPECT_EQ(Eval("sprig.hasPrefix('ca', 'catch')"), true);
  EXPECT_EQ(Eval("sprig.replace(' ', '-', 'a b c')"), "a-b-c");
  EXPECT_EQ(Eval("sprig.repeat(3, 'ab')"), "ababab");
  EXPECT_EQ(Eval("sprig.substr(0, 5, 'hello world')"), "hello");
  EXPECT_EQ(Eval("sprig.nospace('a b\\tc')"), "abc");
  EXPECT_EQ(Eval("sprig.join('-', ['a', 1, nil])"), "a-1");
  EXPECT_EQ(Eval("sprig.splitList(',', 'a,b')"), json::parse(R"(["a", "b"])"));
  EXPECT_EQ(Eval("sprig.list(1, 'a')"), json::parse(R"([1, "a"])"));
  EXPECT_EQ(Eval("sprig.b64enc('hi')"), "aGk=");
  EXPECT_EQ(Eval("sprig.b64dec('aGk=')"), "hi");
  EXPECT_EQ(Eval("sprig.toJson({a: [1]})"), R"({"a":[1]})");
}

TEST(ExprTest, SprigDate) {
  const TagScope scope = {{"workflow.creationTimestamp", "2024-03-05T07:08:09Z"}};
  EXPECT_EQ(Eval("sprig.date('2006', workflow.creationTimestamp)", scope), "2024");
  EXPECT_EQ(Eval("sprig.date('2006-01-02T15:04:05Z07:00', workflow.creationTimestamp)", scope),
            "2024-03-05T07:08:09Z");
  EXPECT_EQ(Eval("sprig.date('Mon Jan _2 3:04PM MST 06 002', workflow.creationTimestamp)", scope),
            "Tue Mar  5 7:08AM UTC 24 065");
  EXPECT_EQ(Eval("sprig.date('January 2, 2006 -0700', '2024-12-31T23:30:00-02:00')"),
            "January 1, 2025 +0000");  // shown in UTC
  EXPECT_EQ(Eval("sprig.date('15:04:05.000', '2024-01-01T00:00:01.5Z')"), "00:00:01.500");
  EXPECT_EQ(Eval("sprig.date('2006', 0)"), "1970");
  // With workflow.creationTimestamp.<strftime char> keys, workflow.creationTimestamp is a map.
  const TagScope with_parts = {{"workflow.creationTimestamp", "2024-03-05T07:08:09Z"},
                               {"workflow.creationTimestamp.RFC3339", "2024-03-05T07:08:09Z"},
                               {"workflow.creationTimestamp.Y", "2024"}};
  EXPECT_EQ(Eval("sprig.date('2006', workflow.creationTimestamp)", with_parts), "2024");
  EXPECT_NE(Error("sprig.date('2006', 'yesterday')").find("not an RFC 3339 timestamp"),
            std::string::npos);
}

TEST(ExprTest, JsonPath) {
  const TagScope scope = {
      {"workflow.parameters.config",
       R"({"employees": [{"name": "Baris", "age":43},{"name": "Mo", "age": 42}, {"name": "Jai", "age" :44}]})"}};
  EXPECT_EQ(
      Text(R"(jsonpath(workflow.parameters.config, '$.employees[?(@.name=="Baris")].age'))", scope),
      "[43]");
  EXPECT_EQ(Text("jsonpath(workflow.parameters.config, '$.employees[?(@.age>42 && @.age<44)].age')",
                 scope),
            "[43]");
  EXPECT_EQ(Text("jsonpath(workflow.parameters.config, '$.employees[0:1]')", scope),
            R"([{"age":43,"name":"Baris"}])");
  EXPECT_EQ(Text("jsonpath(workflow.parameters.config, '$.employees[*].name')", scope),
            R"(["Baris","Mo","Jai"])");
  EXPECT_EQ(Text("jsonpath(workflow.parameters.config, '$.employees[1].name')", scope), "Mo");
  EXPECT_EQ(Text("jsonpath(workflow.parameters.config, '$.employees[-1].age')", scope), "44");
  EXPECT_EQ(Text("jsonpath(workflow.parameters.config, \"$['employees'][0]['name']\")", scope),
            "Baris");
  EXPECT_EQ(Text("jsonpath(workflow.parameters.config, '$.employees[0,2].name')", scope),
            R"(["Baris","Jai"])");
  EXPECT_EQ(
      Text("jsonpath(workflow.parameters.config, '$.employees[?(@.age >= 43)][0].name')", scope),
      "Baris");
  EXPECT_EQ(Text("jsonpath(workflow.parameters.config, "
                 "'$.employees[?(@.name == \"Mo\" || @.name == \"Jai\")].name')",
                 scope),
            R"(["Mo","Jai"])");
  EXPECT_EQ(
      Text("jsonpath(workflow.parameters.config, '$.employees[?(!(@.age > 42))].name')", scope),
      R"(["Mo"])");
  EXPECT_EQ(Text("len(jsonpath(workflow.parameters.config, '$'))", scope), "1");
  // A missing key on the definite part of a path is an error, as in Argo.
  EXPECT_NE(Error("jsonpath(workflow.parameters.config, '$.nobody')", scope).find("not found"),
            std::string::npos);
  EXPECT_NE(Error("jsonpath('{', '$')").find("not valid JSON"), std::string::npos);
  EXPECT_NE(Error("jsonpath('{}', '$..a')").find("not supported"), std::string::npos);
  EXPECT_NE(Error("jsonpath(nil, '$')").find("argument 1 must be a string, not nil"),
            std::string::npos);
}

// Every expression in the Argo examples of the conformance suite
// (/work/shared/conformance/argo-examples), with the data they are given.
TEST(ExprTest, ArgoExamples) {
  // expression-tag-template-workflow.yaml
  EXPECT_EQ(Text("toJson(filter([1, 3], {# > 1}))"), "[3]");
  EXPECT_EQ(Text("item", {{"item", "3"}}), "3");
  const TagScope pod = {{"inputs.parameters.foo", "3"},
                        {"workflow.creationTimestamp", "2025-06-01T12:00:00Z"}};
  EXPECT_EQ(Text("asInt(inputs.parameters.foo) * 10", pod), "30");
  EXPECT_EQ(Text("sprig.date('2006', workflow.creationTimestamp)", pod), "2025");

  // life-cycle-hooks-wf-level.yaml and life-cycle-hooks-tmpl-level.yaml
  EXPECT_EQ(Eval(R"(workflow.status == "Running")", {{"workflow.status", "Running"}}), true);
  EXPECT_EQ(Eval(R"(workflow.status == "Running")", {{"workflow.status", "Succeeded"}}), false);
  const TagScope steps = {{"steps.step-1.status", "Running"}, {"steps.step2.status", "Succeeded"}};
  EXPECT_EQ(Eval(R"(steps["step-1"].status == "Running")", steps), true);
  EXPECT_EQ(Eval(R"(steps["step-1"].status == "Succeeded")", steps), false);
  EXPECT_EQ(Eval(R"(steps.step2.status == "Running")", steps), false);
  EXPECT_EQ(Eval(R"(steps.step2.status == "Succeeded")", steps), true);

  // conditionals.yaml
  EXPECT_EQ(Eval(R"( inputs.parameters["should-print"] == 'true')",
                 {{"inputs.parameters.should-print", "true"}}),
            true);
  EXPECT_EQ(Eval("jsonpath(workflow.parameters.json, '$[0].value') == 'true'",
                 {{"workflow.parameters.json", R"([{"name": "should-print", "value": "true"}])"}}),
            true);

  // expression-destructure-json.yaml
  const TagScope config = {{"workflow.parameters.config", R"({"a": "1", "b": "2", "c": "3"})"}};
  EXPECT_EQ(Text("jsonpath(workflow.parameters.config, '$.a')", config), "1");
  EXPECT_EQ(Text("jsonpath(workflow.parameters.config, '$.b')", config), "2");
  EXPECT_EQ(Text("jsonpath(workflow.parameters.config, '$.c')", config), "3");

  // conditional-parameters.yaml (steps) and dag-conditional-parameters.yaml (tasks)
  for (const char* kind : {"steps", "tasks"}) {
    const std::string expression =
        absl::StrCat(kind, "['flip-coin'].outputs.result == 'heads' ? ", kind,
                     ".heads.outputs.result : ", kind, ".tails.outputs.result");
    const std::string prefix = absl::StrCat(kind, ".");
    EXPECT_EQ(Eval(expression, {{prefix + "flip-coin.outputs.result", "heads"},
                                {prefix + "heads.outputs.result", "it was heads"}}),
              "it was heads");
    EXPECT_EQ(Eval(expression, {{prefix + "flip-coin.outputs.result", "tails"},
                                {prefix + "tails.outputs.result", "it was tails"}}),
              "it was tails");
  }

  // fibonacci-seq-conditional-param.yaml
  constexpr std::string_view kFibonacci =
      "asInt(inputs.parameters.num) == 1? 1: asInt(inputs.parameters.num) == 2? 1: "
      "steps['fibonacci-helper'].outputs.parameters.result";
  EXPECT_EQ(Text(kFibonacci, {{"inputs.parameters.num", "1"}}), "1");
  EXPECT_EQ(Text(kFibonacci, {{"inputs.parameters.num", "2"}}), "1");
  EXPECT_EQ(Text(kFibonacci, {{"inputs.parameters.num", "5"},
                              {"steps.fibonacci-helper.outputs.parameters.result", "5"}}),
            "5");

  // retry-conditional.yaml: its {{inputs.parameters.safe-to-retry}} is a simple tag, substituted
  // before the expression is evaluated.
  constexpr std::string_view kRetry =
      "asInt(lastRetry.exitCode) > 1 &&\nlastRetry.status != \"Error\" &&\n"
      "asInt(lastRetry.duration) < 120 &&\n"
      "({{inputs.parameters.safe-to-retry}} == true || lastRetry.message matches "
      "'imminent node shutdown|pod deleted')";
  const auto retry = [&](std::string safe, std::string exit_code, std::string message) {
    absl::StatusOr<std::string> expression =
        SubstituteTags(kRetry, {{"inputs.parameters.safe-to-retry", safe}});
    EXPECT_TRUE(expression.ok()) << expression.status();
    return Eval(*expression, {{"lastRetry.exitCode", exit_code},
                              {"lastRetry.status", "Failed"},
                              {"lastRetry.duration", "5"},
                              {"lastRetry.message", message}});
  };
  EXPECT_EQ(retry("true", "2", ""), true);
  EXPECT_EQ(retry("true", "1", ""), false);
  EXPECT_EQ(retry("false", "2", ""), false);
  EXPECT_EQ(retry("false", "2", "the pod deleted itself"), true);

  // label-value-from-workflow.yaml
  EXPECT_EQ(Eval("workflow.parameters.foo", {{"workflow.parameters.foo", "bar"}}), "bar");

  // skipped-output-defaults/expression-fallback.yaml
  EXPECT_EQ(Eval("tasks.producer.outputs.parameters.msg ?? 'expr-fallback'",
                 {{"tasks.producer.status", "Skipped"}}),
            "expr-fallback");

  // data-transformations.yaml: `data` is the list of artifact keys.
  EXPECT_EQ(EvalIn(R"(filter(data, {# endsWith "main.log"}))",
                   {{"data", {"logs/a/main.log", "logs/a/other.log", "logs/b/main.log"}}}),
            json::parse(R"(["logs/a/main.log", "logs/b/main.log"])"));

  // cron-when.yaml reads the clock (now()) and calls methods: not supported.
  EXPECT_NE(Error("cronworkflow.lastScheduledTime == nil || "
                  "(now() - cronworkflow.lastScheduledTime).Seconds() > 360",
                  {{"cronworkflow.lastScheduledTime", ""}})
                .find("unknown function now()"),
            std::string::npos);
}

TEST(ExprTest, ArgoExampleReusingVerboseSnippets) {
  // expression-reusing-verbose-snippets.yaml: the input's value, then the three env values.
  constexpr std::string_view kWeekTemps = R"(
                map([
                    jsonpath(sprig.b64dec(jsonpath(workflow.parameters.weather, '$.weekWeather')), '$.temps')
                  ], {
                    toJson({
                      avg: sprig.add(#[0], #[1], #[2], #[3], #[4]) / 5,
                      min: sprig.min(#[0], #[1], #[2], #[3], #[4]),
                      max: sprig.max(#[0], #[1], #[2], #[3], #[4])
                    })
                })[0]
              )";
  const std::string week_temps =
      Text(kWeekTemps, {{"workflow.parameters.weather",
                         R"({"weekWeather": "eyJ0ZW1wcyI6IFszNCwgMjcsIDE1LCA1NywgNDZdfQo="})"}});
  EXPECT_EQ(week_temps, R"({"avg":35.8,"max":57,"min":15})");
  const TagScope scope = {{"inputs.parameters.week-temps", week_temps}};
  EXPECT_EQ(Text("jsonpath(inputs.parameters['week-temps'], '$.avg')", scope), "35.8");
  EXPECT_EQ(Text("jsonpath(inputs.parameters['week-temps'], '$.min')", scope), "15");
  EXPECT_EQ(Text("jsonpath(inputs.parameters['week-temps'], '$.max')", scope), "57");
}

TEST(ExprTest, ValueText) {
  EXPECT_EQ(ExpressionValueText(json("as is")), "as is");
  EXPECT_EQ(ExpressionValueText(json()), "");
  EXPECT_EQ(ExpressionValueText(json(true)), "true");
  EXPECT_EQ(ExpressionValueText(json(30)), "30");
  EXPECT_EQ(ExpressionValueText(json(30.0)), "30");
  EXPECT_EQ(ExpressionValueText(json(35.8)), "35.8");
  EXPECT_EQ(ExpressionValueText(json(-0.5)), "-0.5");
  EXPECT_EQ(ExpressionValueText(json(1e21)), "1e+21");
  EXPECT_EQ(ExpressionValueText(json(1e-7)), "1e-7");
  EXPECT_EQ(ExpressionValueText(json(123456789.0)), "123456789");
  EXPECT_EQ(ExpressionValueText(json::parse(R"({"b": [1.0, "x<y"], "a": null})")),
            R"({"a":null,"b":[1,"x<y"]})");
  EXPECT_EQ(ExpressionValueText(json(std::numeric_limits<double>::infinity())), "+Inf");
  EXPECT_EQ(Text("7 / 2"), "3.5");
  EXPECT_EQ(Text("6 / 2"), "3");
}

TEST(ExprTest, SyntaxErrorsNameTheExpressionAndColumn) {
  EXPECT_EQ(Error("a +"), "expression 'a +': unexpected end at column 4");
  EXPECT_EQ(Error("(1 + 2"), "expression '(1 + 2': expected ')' but found end at column 7");
  EXPECT_EQ(Error("1 +* 2"), "expression '1 +* 2': unexpected '*' at column 4");
  EXPECT_EQ(Error("'open"), "expression ''open': unterminated string at column 1");
  EXPECT_EQ(Error("a ? b"), "expression 'a ? b': expected ':' but found end at column 6");
  EXPECT_EQ(Error("1 @ 2"), "expression '1 @ 2': unexpected character '@' at column 3");
  EXPECT_EQ(Error("'\\q'"), "expression ''\\q'': unknown escape \\q in string at column 2");
  EXPECT_EQ(Error("1\n+\n*"), "expression '1 + *': unexpected '*' at line 3, column 1");
  EXPECT_EQ(Error("# > 1"),
            "expression '# > 1': '#' can only be used inside a predicate ({…}) "
            "at column 1");
  EXPECT_EQ(Error("a ?? b + 1"),
            "expression 'a ?? b + 1': operator + and ?? cannot be mixed: add parentheses at "
            "column 8");
  EXPECT_EQ(Error("let x = 1; x"),
            "expression 'let x = 1; x': variables (let) are not supported "
            "at column 1");
  EXPECT_EQ(Error("99999999999999999999"),
            "expression '99999999999999999999': integer literal is too large at column 1");
  const std::string long_expression(200, '1');
  EXPECT_NE(Error(long_expression + " +").find("…"), std::string::npos);  // abbreviated
  EXPECT_TRUE(CheckExpressionSyntax("filter(x, {# > 1}) ?? y.z").ok());
  EXPECT_FALSE(CheckExpressionSyntax("a +").ok());
}

TEST(ExprTest, UnknownFunctionsAndMethods) {
  EXPECT_EQ(Error("nosuch(1)"), "expression 'nosuch(1)': unknown function nosuch() at column 1");
  EXPECT_EQ(Error("sprig.nosuch(1)"),
            "expression 'sprig.nosuch(1)': unknown function sprig.nosuch() at column 7");
  EXPECT_EQ(Error("x.Seconds()", {{"x", "1"}}),
            "expression 'x.Seconds()': method calls are not supported (.Seconds()) at column 3");
  EXPECT_EQ(Error("len(1, 2)"),
            "expression 'len(1, 2)': len() takes 1 argument, not 2 at column 1");
  EXPECT_EQ(Error("split('a')"),
            "expression 'split('a')': split() takes 2 to 3 arguments, not 1 at column 1");
  EXPECT_EQ(Error("filter([1])"),
            "expression 'filter([1])': filter() needs at least 2 arguments at column 11");
}

TEST(ExprTest, TypeErrors) {
  EXPECT_EQ(Error("'a' - 1"), "expression ''a' - 1': invalid operation: string - int at column 5");
  EXPECT_EQ(Error("'a' + 1"), "expression ''a' + 1': invalid operation: string + int at column 5");
  EXPECT_EQ(Error("1 < 'a'"), "expression '1 < 'a'': invalid operation: int < string at column 3");
  EXPECT_EQ(Error("1.5 % 2"), "expression '1.5 % 2': invalid operation: float % int at column 5");
  EXPECT_EQ(Error("1 % 0"), "expression '1 % 0': integer divide by zero at column 3");
  EXPECT_EQ(Error("!1"), "expression '!1': invalid operation: ! int at column 1");
  EXPECT_EQ(Error("1 && true"),
            "expression '1 && true': operands of && must be bools, not int at column 3");
  EXPECT_EQ(Error("'x' ? 1 : 2"),
            "expression ''x' ? 1 : 2': the condition before ? must be a bool, not string at "
            "column 5");
  EXPECT_EQ(Error("nope"), "expression 'nope': unknown name nope at column 1");
  EXPECT_EQ(Error("a.b.c", {{"a.x", "1"}}),
            "expression 'a.b.c': cannot fetch 'c' from nil at column 5");
  EXPECT_EQ(Error("[1][3]"),
            "expression '[1][3]': index out of range: 3 (length is 1) at column 4");
  EXPECT_EQ(Error("{a: 1}[0]"),
            "expression '{a: 1}[0]': cannot fetch 0 from map (its keys are strings) at column 7");
  EXPECT_EQ(Error("'a' matches '('")
                .find("expression ''a' matches '('': invalid regular "
                      "expression '('"),
            0u);
  EXPECT_EQ(Error("asInt('abc')"),
            "expression 'asInt('abc')': asInt(): cannot convert 'abc' to int at column 1");
  EXPECT_EQ(Error("upper(1)"),
            "expression 'upper(1)': upper(): argument 1 must be a string, not int at column 1");
  EXPECT_EQ(Error("filter([1], {# + 1})"),
            "expression 'filter([1], {# + 1})': the predicate of filter() must give a bool, not "
            "int at column 16");
  EXPECT_EQ(Error("filter('abc', {true})"),
            "expression 'filter('abc', {true})': filter() needs an array, not string at column 1");
  EXPECT_EQ(Error("len(nil)"),
            "expression 'len(nil)': len(): invalid argument for len (type nil) at column 1");
}

TEST(ExprTest, LimitsForUntrustedInput) {
  // Nesting.
  const std::string deep = std::string(150, '(') + "1" + std::string(150, ')');
  EXPECT_NE(Error(deep).find("nested too deeply (more than 100 levels)"), std::string::npos);
  std::string nested_arrays = std::string(150, '[') + std::string(150, ']');
  EXPECT_NE(Error(nested_arrays).find("nested too deeply"), std::string::npos);
  std::string unary(150, '!');
  EXPECT_NE(Error(unary + "true").find("nested too deeply"), std::string::npos);
  EXPECT_EQ(Eval(std::string(99, '(') + "1" + std::string(99, ')')), 1);
  // Long chains are fine up to a point.
  std::string sum = "1";
  for (int i = 0; i < 900; ++i) sum += " + 1";
  EXPECT_EQ(Eval(sum), 901);
  for (int i = 0; i < 200; ++i) sum += " + 1";
  EXPECT_NE(Error(sum).find("too deeply chained"), std::string::npos);
  // Length.
  const std::string huge(64 * 1024 + 1, '1');
  EXPECT_NE(Error(huge).find("longer than 65536 bytes"), std::string::npos);
  // Work and size.
  EXPECT_NE(Error("map(1..100000, {map(1..1000, {#})})").find("too costly"), std::string::npos);
  EXPECT_NE(Error("repeat('x', 100000000)").find("longer than"), std::string::npos);
  EXPECT_EQ(Eval("repeat('', 1000000000000000000)"), "");
  EXPECT_NE(Error("1..9223372036854775807").find("too costly"), std::string::npos);
  EXPECT_NE(Error("-9223372036854775807..9223372036854775807").find("too costly"),
            std::string::npos);
  EXPECT_NE(Error("reduce(1..1000, [#acc], 0)").find("nested more than"), std::string::npos);
  EXPECT_NE(Error("fromJSON('" + std::string(300, '[') + std::string(300, ']') + "')")
                .find("nested more than 256"),
            std::string::npos);
  EXPECT_NE(Error("'a' matches '(a'").find("invalid regular expression"), std::string::npos);
  EXPECT_NE(Error("'a' matches 'a)|(b'").find("invalid regular expression"), std::string::npos);
  // Matching takes linear time, even for patterns that backtrack exponentially elsewhere.
  const json long_text = {{"s", std::string(100000, 'a')}, {"t", std::string(100000, 'a') + "b"}};
  EXPECT_EQ(EvalIn("s matches '(a+)+b'", long_text), false);
  EXPECT_EQ(EvalIn("t matches '(a+)+b$'", long_text), true);
  EXPECT_EQ(EvalIn("s matches '^a'", long_text), true);
  EXPECT_EQ(EvalIn("t matches '^b'", long_text), false);
}

}  // namespace
}  // namespace dagd::engine
