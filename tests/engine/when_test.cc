// `when` conditions: cases from Argo's documentation and examples (coinflip, conditionals,
// conditionals-complex, retry-conditional) and our own.
#include "engine/when.h"

#include <gtest/gtest.h>

#include <string>

namespace dagd::engine {
namespace {

bool Holds(std::string_view condition) {
  absl::StatusOr<bool> result = EvaluateWhen(condition);
  EXPECT_TRUE(result.ok()) << condition << ": " << result.status();
  return result.ok() && *result;
}

std::string ErrorOf(std::string_view condition) {
  absl::StatusOr<bool> result = EvaluateWhen(condition);
  EXPECT_FALSE(result.ok()) << condition << " evaluated to " << (result.ok() && *result);
  return result.ok() ? "" : std::string(result.status().message());
}

TEST(WhenTest, BareWordsAreStrings) {
  EXPECT_TRUE(Holds("heads == heads"));  // coinflip, after substitution
  EXPECT_FALSE(Holds("tails == heads"));
  EXPECT_TRUE(Holds("tails != heads"));
  EXPECT_TRUE(Holds("hello-world == hello-world"));
}

TEST(WhenTest, QuotedStringsMayHoldSpacesAndOperators) {
  EXPECT_TRUE(Holds("'a b' == \"a b\""));
  EXPECT_TRUE(Holds("'x && y' == 'x && y'"));
  EXPECT_FALSE(Holds("'' == 'x'"));
}

TEST(WhenTest, NumbersCompareAsNumbers) {
  EXPECT_TRUE(Holds("5 > 3"));
  EXPECT_TRUE(Holds("1.0 == 1"));
  EXPECT_TRUE(Holds("-2 < 0.5"));
  EXPECT_TRUE(Holds("10 >= 10"));
  EXPECT_FALSE(Holds("9 <= 8"));
  EXPECT_TRUE(Holds("07 == 7"));
}

TEST(WhenTest, RegularExpressions) {
  EXPECT_TRUE(Holds("foo-bar =~ ^foo"));
  EXPECT_FALSE(Holds("foo-bar =~ '^bar'"));
  EXPECT_TRUE(Holds("foo-bar !~ '^bar'"));
  EXPECT_TRUE(Holds("'Error: x' =~ 'Err.*x$'"));
}

TEST(WhenTest, RegularExpressionsRunInPolynomialTime) {
  // A nested quantifier backtracks exponentially in std::regex's default matcher; this took
  // minutes before (found by tests/fuzz).
  EXPECT_FALSE(Holds("'" + std::string(40, 'a') + "' =~ '(a+)+b'"));
  EXPECT_TRUE(Holds("'" + std::string(40, 'a') + "b' =~ '(a+)+b'"));
  EXPECT_NE(ErrorOf("x =~ '(a)\\1'").find("is not a regular expression"), std::string::npos);
  EXPECT_NE(ErrorOf("x =~ '" + std::string(1025, 'a') + "'").find("longer than 1024 bytes"),
            std::string::npos);
}

TEST(WhenTest, NestingIsLimited) {
  // The parser recurses on '(' and '!': a deep condition overflowed the stack (tests/fuzz).
  EXPECT_TRUE(Holds(std::string(100, '(') + "true" + std::string(100, ')')));
  EXPECT_TRUE(Holds(std::string(100, '!') + "true"));
  EXPECT_NE(ErrorOf(std::string(101, '(') + "true" + std::string(101, ')'))
                .find("nested more than 100 levels deep"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(100000, '!') + "true").find("nested more than 100 levels deep"),
            std::string::npos);
}

TEST(WhenTest, LogicWithPrecedenceAndParentheses) {
  // conditionals-complex: "{{steps.flip.outputs.result}} == heads && ..."
  EXPECT_TRUE(Holds("heads == heads && 3 > 2"));
  EXPECT_FALSE(Holds("heads == tails && 3 > 2"));
  EXPECT_TRUE(Holds("heads == tails || 3 > 2"));
  EXPECT_TRUE(Holds("a == b && c == d || e == e"));  // && binds tighter
  EXPECT_FALSE(Holds("a == b && (c == d || e == e)"));
  EXPECT_TRUE(Holds("!(a == b)"));
  EXPECT_TRUE(Holds("!false"));
  EXPECT_TRUE(Holds("true"));
  EXPECT_FALSE(Holds("false || false"));
}

TEST(WhenTest, WhatIsNotABooleanConditionIsAnErrorNamingIt) {
  EXPECT_EQ(ErrorOf("heads"),
            "when 'heads': 'heads' is not a boolean; compare it, e.g. heads == value");
  EXPECT_EQ(ErrorOf("abc > 3"),
            "when 'abc > 3': 'abc' > '3' compares values that are not both "
            "numbers");
  EXPECT_EQ(ErrorOf("(a == a"), "when '(a == a': missing ')'");
  EXPECT_EQ(ErrorOf("a =="), "when 'a ==': unexpected end; expected a value");
  EXPECT_EQ(ErrorOf("'open == x"), "when ''open == x': unterminated string at position 1");
  EXPECT_EQ(ErrorOf("a == a b"), "when 'a == a b': unexpected 'b'");
  EXPECT_NE(ErrorOf("x =~ '('").find("is not a regular expression"), std::string::npos);
  EXPECT_EQ(ErrorOf("yes && true"),
            "when 'yes && true': 'yes' is not a boolean (&& needs true or false)");
  EXPECT_EQ(ErrorOf(""), "when '': unexpected end; expected a value");
}

}  // namespace
}  // namespace dagd::engine
