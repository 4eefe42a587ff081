// The seed's "Complete Chat Example" (realcast-websocket-api.md), verbatim; the seed's mis-encoded
// emoji are restored. Tests substitute the URL and the token in a temporary copy, nothing else.
import { io } from 'socket.io-client';

class RealCastChat {
  constructor(streamId, userId, username, token) {
    this.streamId = streamId;
    this.userId = userId;
    this.username = username;
    
    this.socket = io('wss://realtime.realcast.io', {
      auth: { token, app_id: 'app_xyz789' }
    });
    
    this.setupListeners();
  }
  
  setupListeners() {
    this.socket.on('connect', () => {
      console.log('Connected!');
      this.joinChat();
    });
    
    this.socket.on('chat:message', (data) => {
      this.displayMessage(data);
    });
    
    this.socket.on('chat:typing', (data) => {
      this.showTypingIndicator(data.username);
    });
    
    this.socket.on('viewer.count.update', (data) => {
      this.updateViewerCount(data.count);
    });
    
    this.socket.on('user.banned', (data) => {
      if (data.user_id === this.userId) {
        this.handleBan();
      }
    });
  }
  
  joinChat() {
    this.socket.emit('chat:join', {
      stream_id: this.streamId,
      user_id: this.userId,
      username: this.username
    });
  }
  
  sendMessage(message) {
    this.socket.emit('chat:message', {
      stream_id: this.streamId,
      user_id: this.userId,
      username: this.username,
      message: message
    });
  }
  
  sendReaction(emoji) {
    this.socket.emit('reaction:send', {
      stream_id: this.streamId,
      user_id: this.userId,
      emoji: emoji
    });
  }
  
  disconnect() {
    this.socket.emit('chat:leave', {
      stream_id: this.streamId,
      user_id: this.userId
    });
    this.socket.disconnect();
  }
  
  displayMessage(data) {
    // Implement your UI logic
    console.log(`${data.username}: ${data.message}`);
  }
  
  showTypingIndicator(username) {
    // Implement typing indicator UI
    console.log(`${username} is typing...`);
  }
  
  updateViewerCount(count) {
    // Update viewer count UI
    console.log(`Viewers: ${count}`);
  }
  
  handleBan() {
    alert('You have been banned from this chat');
    this.disconnect();
  }
}

// Usage
const chat = new RealCastChat(
  'stream_qwe456',
  'user_abc123',
  'GamerPro',
  'your_jwt_token'
);

// Send message
chat.sendMessage('Hello everyone!');

// Send reaction
chat.sendReaction('👍');
