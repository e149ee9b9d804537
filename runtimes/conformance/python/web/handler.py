# The conformance suite's lambda function (runtimes/conformance/README.md).
def handler(event, context):
    if event["rawPath"] == "/bad":
        return {"statusCode": "abc"}
    name = (event.get("queryStringParameters") or {}).get("name", "nobody")
    return {"statusCode": 201, "headers": {"content-type": "text/plain", "x-path": event["rawPath"]}, "body": "hello " + name}
