"""A warren chat bot in pika: answers "@echo some words" by streaming the words back."""
import json
import os
import time

import pika

url = os.environ.get("AMQP_URL", "amqp://echobot:s3cret@localhost:5672/chat")
name = os.environ.get("BOT_NAME", "echo")  # answers @echo and /echo
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
# the chat sends requests to <name>.requests; auto_delete: gone with the bot
ch.queue_declare(queue=f"{name}.requests", auto_delete=True)


def on_request(ch, method, props, body):
    request = json.loads(body)  # id, room, user, bot, text, args, message_id, ts
    reply = pika.BasicProperties(correlation_id=props.correlation_id, content_type="application/json")
    for word in (request["args"] or "say something").split():
        # reply_to is amq.rabbitmq.reply-to.* (direct reply-to) or a queue with x-expires
        ch.basic_publish("", props.reply_to, json.dumps({"text": word + " "}), reply)
        time.sleep(0.2)
    ch.basic_publish("", props.reply_to, json.dumps({"done": True}), reply)
    ch.basic_ack(method.delivery_tag)


ch.basic_qos(prefetch_count=1)
ch.basic_consume(f"{name}.requests", on_request)
ch.start_consuming()
