"""Python's own XML-RPC client against `rpcpeer serve`: every type, faults,
multicall, dates, base64 and None. Run by tests/xmlrpc.rs with the server's
URL; exits non-zero (an AssertionError and its traceback) on the first
thing that is not as expected."""

import datetime
import sys
import xmlrpc.client

url = sys.argv[1]
# Dates as datetime, base64 as bytes; None allowed both ways.
server = xmlrpc.client.ServerProxy(url, allow_none=True, use_builtin_types=True)


def fault_of(call):
    try:
        call()
    except xmlrpc.client.Fault as fault:
        return fault
    raise AssertionError("expected a fault")


# Introspection, from the router.
methods = server.system.listMethods()
for name in ["subtract", "echo", "shiftDate", "reverseBytes", "system.multicall", "system.methodHelp"]:
    assert name in methods, (name, methods)
assert "Subtracts" in server.system.methodHelp("subtract"), server.system.methodHelp("subtract")
assert server.system.methodSignature("shiftDate") == [["dateTime.iso8601", "dateTime.iso8601", "int"]], \
    server.system.methodSignature("shiftDate")
assert server.system.methodSignature("reverseBytes") == [["base64", "base64"]], \
    server.system.methodSignature("reverseBytes")
assert fault_of(lambda: server.system.methodHelp("nope")).faultCode == -32601

# Every type, there and back, through one handler written for JSON.
for value in [
    7, -2147483648, True, False, "", "plain", "<markup> & \u00fc\u4e2d\U0001F600\ttab\nline",
    2.5, -1e300, [], [1, "two", [3.0, None]], {}, {"a": 1, "b": {"c": [True]}}, None,
]:
    back = server.echo(value)
    assert back == value and type(back) is type(value), (value, back)
# Without a schema saying otherwise (echo takes and returns any value), a
# date and bytes come back in their JSON form: ISO 8601 and base64 strings.
assert server.echo(datetime.datetime(2026, 11, 30, 7, 18, 3)) == "2026-11-30T07:18:03"
assert server.echo(b"\x00\xffhi") == "AP9oaQ=="

# Arithmetic; results past 32 bits come back as <i8>.
assert server.subtract(42, 23) == 19
assert server.subtract(2.5, 1) == 1.5
assert server.sum(2**30, 2**30, 2**30) == 3 * 2**30
# Params by name: one struct param stays one param; subtract takes two.
assert fault_of(lambda: server.subtract({"minuend": 1, "subtrahend": 2})).faultCode == -32602

# Dates and bytes typed by the method's schema.
assert server.shiftDate(datetime.datetime(2026, 11, 30, 7, 18, 3), 2) == datetime.datetime(2026, 12, 2, 7, 18, 3)
assert server.shiftDate(datetime.datetime(2024, 3, 1, 0, 0, 0), -1) == datetime.datetime(2024, 2, 29, 0, 0, 0)
assert server.reverseBytes(b"hello\x00\xff") == b"\xff\x00olleh"
assert server.reverseBytes(b"") == b""

# Faults: an error object's code and message.
fault = fault_of(lambda: server.fail(-32099, "the demo fails on purpose"))
assert (fault.faultCode, fault.faultString) == (-32099, "the demo fails on purpose"), fault
assert fault_of(lambda: server.no_such_method()).faultCode == -32601
bad_params = fault_of(lambda: server.shiftDate("not a date", 1))
assert bad_params.faultCode == -32602 and "ISO 8601" in bad_params.faultString, bad_params
assert fault_of(lambda: server.panic()).faultCode == -32603

# Multicall: results in order, a fault in its place.
multi = xmlrpc.client.MultiCall(server)
multi.subtract(42, 23)
multi.fail(-32098, "second fails")
multi.reverseBytes(b"ab")
multi.shiftDate(datetime.datetime(2026, 1, 31, 12, 0, 0), 1)
multi.system.methodHelp("echo")
multi.echo(None)
results = multi()
assert results[0] == 19
try:
    results[1]
    raise AssertionError("the second call of the multicall should be a fault")
except xmlrpc.client.Fault as fault:
    assert (fault.faultCode, fault.faultString) == (-32098, "second fails"), fault
assert results[2] == b"ba"
assert results[3] == datetime.datetime(2026, 2, 1, 12, 0, 0)
assert "one param" in results[4], results[4]
assert results[5] is None

# Python's own types, without use_builtin_types: DateTime and Binary.
plain = xmlrpc.client.ServerProxy(url, allow_none=True)
at = plain.shiftDate(xmlrpc.client.DateTime("20261130T07:18:03"), 0)
assert isinstance(at, xmlrpc.client.DateTime) and at.value == "20261130T07:18:03", at
data = plain.reverseBytes(xmlrpc.client.Binary(b"xy"))
assert isinstance(data, xmlrpc.client.Binary) and data.data == b"yx", data

print("xmlrpc.client: all checks passed")
