// Pure: Docker's -p syntax.
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/errors.js';
import { formatPortMapping, parsePortMapping } from '../../src/network/ports.js';

describe('port mappings', () => {
  it('parses [[hostIp:]hostPort:]containerPort[/proto]', () => {
    expect(parsePortMapping('8080:80')).toEqual({ hostIp: undefined, hostPort: 8080, containerPort: 80, protocol: 'tcp' });
    expect(parsePortMapping('127.0.0.1:5353:53/udp')).toEqual({ hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53, protocol: 'udp' });
    expect(parsePortMapping('80').hostPort).toBe(0);
    expect(parsePortMapping('127.0.0.1::80')).toMatchObject({ hostIp: '127.0.0.1', hostPort: 0, containerPort: 80 });
    expect(parsePortMapping({ hostIp: undefined, hostPort: 1, containerPort: 2, protocol: 'tcp' })).toMatchObject({ hostPort: 1, containerPort: 2 });
  });

  it('formats as docker ps does', () => {
    expect(formatPortMapping(parsePortMapping('8080:80'))).toBe('0.0.0.0:8080->80/tcp');
  });

  it('refuses bad ports, protocols and shapes with InvalidOptionError', () => {
    for (const bad of ['0', '70000:80', '80/sctp', 'a:b:c:d', '1.2.3:80:80', '8080:']) {
      expect(() => parsePortMapping(bad), bad).toThrow(InvalidOptionError);
    }
  });
});
