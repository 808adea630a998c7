"""Leave a transaction open: begin, write records, flush, then exit without committing or
aborting (os._exit skips librdkafka's clean-up). Run as a subprocess by test_transactions.

    hang_txn.py BOOTSTRAP TRANSACTIONAL_ID TOPIC PARTITION COUNT
"""

import os
import sys

from confluent_kafka import Producer

bootstrap, transactional_id, topic, partition, count = sys.argv[1:6]
producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                     "transaction.timeout.ms": 900000})
producer.init_transactions(30)
producer.begin_transaction()
for i in range(int(count)):
    producer.produce(topic, key=b"k", value=b"open-%d" % i, partition=int(partition))
if producer.flush(30) != 0:
    sys.exit("records not delivered")
os._exit(0)
